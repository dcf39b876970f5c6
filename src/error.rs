//! The top-level error and the process exit codes.

/// Clean exit.
pub const EXIT_OK: i32 = 0;
/// A runtime failure (could not bind, fork, poll…).
pub const EXIT_FAILURE: i32 = 1;
/// Bad command line or configuration.
pub const EXIT_USAGE: i32 = 2;
/// A worker could not boot (processor construction failed). The master stops
/// instead of restarting workers that can never start.
pub const EXIT_BOOT_FAILURE: i32 = 3;

/// Everything that can stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] crate::listeners::ListenError),
    /// The master failed.
    #[error(transparent)]
    Master(#[from] crate::master::MasterError),
    /// A control command (status, reload, stop) failed.
    #[error("{0}")]
    Control(String),
}

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config(_) => EXIT_USAGE,
            Error::Listen(_) | Error::Control(_) => EXIT_FAILURE,
            Error::Master(e) => e.exit_code(),
        }
    }
}
