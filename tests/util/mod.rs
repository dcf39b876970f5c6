//! The integration-test harness, by room: the server under test
//! (`server.rs`), an HTTP client (`client.rs`), background load
//! (`load.rs`), Swift's own programs (`swift.rs`), stand-in servers
//! (`stub.rs`), files and waiting (`fs.rs`), ports named before a server
//! starts (`ports.rs`), and a slow disk (`slowfs.rs`).

mod client;
mod fs;
mod load;
mod ports;
mod server;
pub mod slowfs;
mod stub;
mod swift;

pub use client::*;
pub use fs::*;
pub use load::*;
pub use ports::*;
pub use server::*;
pub use stub::*;
pub use swift::*;
