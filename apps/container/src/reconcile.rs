//! Which replica's storage policy index is right when two disagree
//! (Swift's `container/reconciler.py`: `cmp_policy_info`,
//! `incorrect_policy_index`): of replicas recreated after a delete, the
//! newest; else the oldest.

use aerie_storage::Timestamp;
use std::cmp::Ordering;

/// What the comparison reads of a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    put: Timestamp,
    delete: Timestamp,
    status_changed: Timestamp,
    count: i64,
    policy: i64,
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO)
}

impl Side {
    /// A replica's timestamps, object count and policy index.
    pub fn new(put: &str, delete: &str, status_changed: &str, count: i64, policy: i64) -> Side {
        Side { put: ts(put), delete: ts(delete), status_changed: ts(status_changed), count, policy }
    }

    /// The policy index.
    pub fn policy(&self) -> i64 {
        self.policy
    }

    fn deleted(&self) -> bool {
        self.delete > self.put && self.count == 0
    }

    fn recreated(&self) -> bool {
        self.put > self.delete && self.delete > Timestamp::ZERO
    }
}

/// `Less` when `info` is right, `Greater` when `remote` is better.
fn cmp_policy_info(info: &Side, remote: &Side) -> Ordering {
    let (deleted, remote_deleted) = (info.deleted(), remote.deleted());
    if deleted || remote_deleted {
        if !deleted {
            return Ordering::Less;
        }
        if !remote_deleted {
            return Ordering::Greater;
        }
        return remote.status_changed.cmp(&info.status_changed);
    }
    let (recreated, remote_recreated) = (info.recreated(), remote.recreated());
    if recreated || remote_recreated {
        if !recreated {
            return Ordering::Greater;
        }
        if !remote_recreated {
            return Ordering::Less;
        }
        let last_delete = info.delete.max(remote.delete);
        if info.put < last_delete {
            return Ordering::Greater;
        }
        if remote.put < last_delete {
            return Ordering::Less;
        }
    }
    info.status_changed.cmp(&remote.status_changed)
}

/// Whether this replica should take the remote's policy index.
pub fn incorrect_policy_index(info: &Side, remote: &Side) -> bool {
    remote.policy != info.policy && cmp_policy_info(info, remote) == Ordering::Greater
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_wins_unless_recreated_and_a_deleted_replica_loses() {
        let a = Side::new("1700000000.00000", "0", "1700000000.00000", 1, 0);
        let b = Side::new("1700000005.00000", "0", "1700000005.00000", 1, 1);
        assert!(!incorrect_policy_index(&a, &b), "the older one is right");
        assert!(incorrect_policy_index(&b, &a));
        let deleted = Side::new("1700000000.00000", "1700000001.00000", "1700000001.00000", 0, 0);
        assert!(incorrect_policy_index(&deleted, &b), "a live replica beats a deleted one");
        assert!(!incorrect_policy_index(&b, &deleted));
        let recreated = Side::new("1700000009.00000", "1700000001.00000", "1700000009.00000", 1, 2);
        assert!(incorrect_policy_index(&a, &recreated), "one recreated after a delete is newer data");
        assert!(!incorrect_policy_index(&a, &Side::new("1", "0", "1", 1, 0)), "same policy: nothing to change");
    }
}
