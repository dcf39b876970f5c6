//! The only module allowed `unsafe`.
//!
//! Invariants every caller relies on:
//!
//! * [`fork::fork`] is called only by `master::spawn`, only while the master
//!   has exactly one thread (asserted in debug builds), and the child branch
//!   never returns into master code: it runs `worker::run`, which exits.
//! * Everything else here is a safe wrapper over a system call whose safety
//!   does not depend on the caller.
#![allow(unsafe_code)]

pub mod fd;
pub mod fork;
pub mod process;
pub mod shm;
