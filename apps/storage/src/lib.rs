//! Building blocks of aerie's Swift storage services: timestamps, request
//! paths, hash paths, Python pickles (Swift's metadata format), devices and
//! durable writes, rings, swift.conf and its constraints, and the SQLite
//! broker base of the container and account databases. Nothing here knows
//! about sockets or the server.
#![forbid(unsafe_code)]

pub mod client;
pub mod constraints;
pub mod db;
pub mod fs;
pub mod hash;
pub mod header;
pub mod no_replication;
pub mod pass;
pub mod path;
pub mod pickle;
pub mod pyjson;
pub mod recon;
pub mod replicas;
pub mod ring;
pub mod swift_conf;
pub mod swob;
pub mod timestamp;

pub use hash::HashSalt;
pub use path::{ObjectPath, PathError};
pub use timestamp::Timestamp;
