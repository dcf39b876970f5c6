//! Sans-io HTTP/1.1: bytes in, parsed heads and decoded bodies out; response
//! heads and chunk framing into byte buffers.
//!
//! Nothing here touches a socket or reads the clock (callers pass the date),
//! so every rule can be unit-tested and fuzzed. The rules follow RFC 9112,
//! with the request-smuggling defences of §6.3: a request with both
//! Content-Length and Transfer-Encoding, differing Content-Lengths, a transfer
//! coding other than a lone `chunked`, a bad chunk size, obs-fold or a bare CR
//! is refused with 400 (501 for an unknown coding) and the connection closed.

pub mod close;
pub mod date;
pub mod error;
pub mod framing;
pub mod request;
pub mod response;

pub use close::CloseReason;
pub use error::HttpError;
pub use framing::{BodyDecoder, ChunkedDecoder};
pub use request::{parse_head, HeadLimits, ParsedHead};
