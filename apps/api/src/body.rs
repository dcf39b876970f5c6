//! Request and response bodies as a processor sees them.
//!
//! A request body is read with [`std::io::Read`]; the server behind it decodes
//! the framing and feeds the bytes through a bounded buffer, so reading blocks
//! (on a pool thread) until the client has sent more. A response body that is
//! not in memory is a [`BodyStream`] the server pulls chunks from on the
//! processor's thread.

use crate::Header;
use std::fmt;
use std::io;

/// The server side of a request body. Implemented by the server; a processor
/// only sees it through [`RequestBody`].
pub trait BodySource: Send {
    /// Read decoded body bytes; `Ok(0)` at the end of the body. The first call
    /// sends `100 Continue` if the client asked for it and it was not sent yet.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Send `100 Continue` now (if the client expects it and it was not sent
    /// yet), carrying `headers` in the interim response. Swift's MIME PUT uses
    /// this to announce `X-Obj-Metadata-Footer: yes`.
    fn send_continue(&mut self, headers: Vec<Header>) -> io::Result<()>;

    /// Send one more `100 Continue` in the middle of the body, when the
    /// first was sent and no answer has been: Swift's multiphase PUT asks
    /// for the commit with it. A source that cannot does nothing.
    fn send_interim_continue(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A request body. Empty when the request has none; when the processor runs
/// inline, reading a non-empty body is an error (inline code must not block).
pub struct RequestBody {
    source: Option<Box<dyn BodySource>>,
    read: u64,
}

impl RequestBody {
    /// A body with no bytes.
    pub fn empty() -> RequestBody {
        RequestBody { source: None, read: 0 }
    }

    /// A body backed by a server-side source.
    pub fn from_source(source: Box<dyn BodySource>) -> RequestBody {
        RequestBody { source: Some(source), read: 0 }
    }

    /// Whether there is a source behind this body (it may still turn out to
    /// hold zero bytes, e.g. a zero-length chunked body).
    pub fn has_source(&self) -> bool {
        self.source.is_some()
    }

    /// How many body bytes the processor has read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Send `100 Continue` with extra headers before reading. A no-op when the
    /// client did not ask for it or it was already sent.
    pub fn send_continue(&mut self, headers: Vec<Header>) -> io::Result<()> {
        match &mut self.source {
            Some(s) => s.send_continue(headers),
            None => Ok(()),
        }
    }

    /// Send another `100 Continue` mid-body (after the first went out and
    /// before any answer), as Swift's multiphase PUT does between its data
    /// and its commit phase.
    pub fn send_interim_continue(&mut self) -> io::Result<()> {
        match &mut self.source {
            Some(s) => s.send_interim_continue(),
            None => Ok(()),
        }
    }
}

impl io::Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.source {
            Some(s) => {
                let n = s.read(buf)?;
                self.read += n as u64;
                Ok(n)
            }
            None => Ok(0),
        }
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody").field("has_source", &self.source.is_some()).field("read", &self.read).finish()
    }
}

/// A response body produced piece by piece, e.g. read from a file. The server
/// calls [`BodyStream::next_chunk`] on the processor's thread (a pool thread
/// for pooled processors) and forwards each chunk through a bounded buffer, so
/// only a few chunks are ever in memory.
pub trait BodyStream: Send {
    /// The next chunk, or `None` at the end. An error after the head was sent
    /// aborts the connection (the client sees a short body), as it must.
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>>;
}

impl<I> BodyStream for I
where
    I: Iterator<Item = io::Result<Vec<u8>>> + Send,
{
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.next().transpose()
    }
}
