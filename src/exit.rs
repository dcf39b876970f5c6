//! Process exit codes, as aerie(8) documents them. Every role's main
//! function ends in one of these; nothing else picks a number.

/// How a process of aerie ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Clean exit.
    Ok,
    /// A runtime failure: could not bind, fork, open the log files, find
    /// the binary, poll…
    Failure,
    /// A bad command line or configuration.
    Usage,
    /// A worker could not boot (a processor could not be built). The master
    /// stops instead of restarting workers that can never start.
    BootFailure,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::BootFailure => 3,
        }
    }

    /// The exit code a number stands for, if it is one of ours.
    pub fn from_code(code: i32) -> Option<ExitCode> {
        [ExitCode::Ok, ExitCode::Failure, ExitCode::Usage, ExitCode::BootFailure].into_iter().find(|e| e.code() == code)
    }

    /// Leave the process with this code.
    pub fn exit(self) -> ! {
        std::process::exit(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn codes_are_the_documented_ones_and_round_trip() {
        let all = [ExitCode::Ok, ExitCode::Failure, ExitCode::Usage, ExitCode::BootFailure];
        assert_eq!(all.map(ExitCode::code), [0, 1, 2, 3]);
        for e in all {
            assert_eq!(ExitCode::from_code(e.code()), Some(e));
        }
        assert_eq!(ExitCode::from_code(9), None);
    }
}
