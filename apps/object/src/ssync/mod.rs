//! SSYNC, Swift's object replication conversation (SWIFT-REPLICATION.md
//! §4), both ends: the receiver the object service runs for `SSYNC
//! /<dev>/<part>` requests (`receiver.rs`) and the sender aerie's
//! replicator runs towards any Swift-compatible object server
//! (`sender.rs`), sharing the line formats (`wire.rs`).

pub(crate) mod receiver;
pub mod sender;
pub mod wire;

pub use receiver::ReceiverSettings;
