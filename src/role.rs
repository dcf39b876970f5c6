//! What a process of aerie is: the master, a worker, or one of the
//! background roles the master forks beside the workers. The kind is what
//! crosses processes (a scoreboard slot records it as a number, a log line
//! as a name); the index tells workers of a generation apart.

/// A child process's kind, as its scoreboard slot records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProcessKind {
    /// Serves requests on the listeners.
    Worker,
    /// Replays async pendings to the container servers.
    ObjectUpdater,
    /// Reports container statistics to the account servers.
    ContainerUpdater,
    /// Keeps the replicas of this node's object partitions in sync.
    ObjectReplicator,
    /// Keeps the replicas of this node's container databases in sync.
    ContainerReplicator,
    /// Keeps the replicas of this node's account databases in sync.
    AccountReplicator,
}

impl ProcessKind {
    /// Every kind, workers first.
    pub const ALL: [ProcessKind; 6] = [
        ProcessKind::Worker,
        ProcessKind::ObjectUpdater,
        ProcessKind::ContainerUpdater,
        ProcessKind::ObjectReplicator,
        ProcessKind::ContainerReplicator,
        ProcessKind::AccountReplicator,
    ];

    /// The number a scoreboard slot stores.
    pub fn code(self) -> u64 {
        match self {
            ProcessKind::Worker => 0,
            ProcessKind::ObjectUpdater => 1,
            ProcessKind::ContainerUpdater => 2,
            ProcessKind::ObjectReplicator => 3,
            ProcessKind::ContainerReplicator => 4,
            ProcessKind::AccountReplicator => 5,
        }
    }

    /// The kind a stored number stands for (unknown numbers read as a
    /// worker's: a reader never trusts the mapping for more than reporting).
    pub fn from_code(code: u64) -> ProcessKind {
        ProcessKind::ALL.into_iter().find(|k| k.code() == code).unwrap_or(ProcessKind::Worker)
    }

    /// The name in log lines, `/status` and process titles.
    pub fn name(self) -> &'static str {
        match self {
            ProcessKind::Worker => "worker",
            ProcessKind::ObjectUpdater => "object-updater",
            ProcessKind::ContainerUpdater => "container-updater",
            ProcessKind::ObjectReplicator => "object-replicator",
            ProcessKind::ContainerReplicator => "container-replicator",
            ProcessKind::AccountReplicator => "account-replicator",
        }
    }

    /// Whether it is a background role (no listener, no connections).
    pub fn is_background(self) -> bool {
        self != ProcessKind::Worker
    }
}

/// This process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The master (never serves a request).
    Master,
    /// A child: its kind and its index within its generation.
    Child(ProcessKind, usize),
}

impl Role {
    /// How log lines name the process (`master`, `worker.2`,
    /// `object-updater`), before the pid.
    pub fn tag(self) -> String {
        match self {
            Role::Master => "master".to_string(),
            Role::Child(ProcessKind::Worker, i) => format!("worker.{i}"),
            Role::Child(kind, _) => kind.name().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for k in ProcessKind::ALL {
            assert_eq!(ProcessKind::from_code(k.code()), k);
        }
        assert_eq!(Role::Child(ProcessKind::Worker, 2).tag(), "worker.2");
        assert_eq!(Role::Child(ProcessKind::ContainerUpdater, 0).tag(), "container-updater");
        assert!(!ProcessKind::Worker.is_background() && ProcessKind::ObjectUpdater.is_background());
    }
}
