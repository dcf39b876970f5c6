//! Streaming reader for the multipart-MIME PUT body the proxy sends when
//! middleware adds footers (§4.12):
//!
//! ```text
//! --B\r\nX-Document: object body\r\n\r\n<object bytes>
//! \r\n--B\r\nX-Document: object metadata\r\nContent-MD5: <md5>\r\n\r\n<json>
//! \r\n--B--
//! ```
//!
//! Part bodies are streamed: the reader keeps only as many bytes as the
//! delimiter is long, so an object of any size passes through in chunks.

use std::io::{self, Read};

/// Longest part-header block accepted.
const MAX_HEADERS: usize = 16 * 1024;

/// Bytes read ahead: `data[lo..]`. Consuming moves `lo`; the consumed
/// front is dropped only once it is large (one move per 64 KiB, not one
/// per read).
#[derive(Default)]
struct Window {
    data: Vec<u8>,
    lo: usize,
}

impl Window {
    fn bytes(&self) -> &[u8] {
        self.data.get(self.lo..).unwrap_or(&[])
    }

    fn len(&self) -> usize {
        self.data.len() - self.lo
    }

    fn starts_with(&self, p: &[u8]) -> bool {
        self.bytes().starts_with(p)
    }

    fn consume(&mut self, n: usize) {
        self.lo = (self.lo + n).min(self.data.len());
        if self.lo >= 64 * 1024 || self.lo == self.data.len() {
            self.data.drain(..self.lo);
            self.lo = 0;
        }
    }

    fn extend(&mut self, b: &[u8]) {
        self.data.extend_from_slice(b);
    }
}

/// Reads MIME parts from a body.
pub struct MimeReader<R: Read> {
    inner: R,
    delim: Vec<u8>,
    buf: Window,
    /// Where reads land before they join `buf` (allocated once).
    scratch: Vec<u8>,
    eof: bool,
    in_body: bool,
    finished: bool,
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl<R: Read> MimeReader<R> {
    /// A reader for documents separated by `boundary`.
    pub fn new(inner: R, boundary: &str) -> MimeReader<R> {
        MimeReader {
            inner,
            delim: format!("\r\n--{boundary}").into_bytes(),
            buf: Window::default(),
            scratch: Vec::new(),
            eof: false,
            in_body: false,
            finished: false,
        }
    }

    /// One read from the body into the window (none at its end).
    fn read_more(&mut self) -> io::Result<()> {
        if self.scratch.is_empty() {
            self.scratch = vec![0u8; 64 * 1024];
        }
        let n = self.inner.read(&mut self.scratch)?;
        if n == 0 {
            self.eof = true;
        } else {
            self.buf.extend(self.scratch.get(..n).unwrap_or(&[]));
        }
        Ok(())
    }

    fn fill(&mut self, want: usize) -> io::Result<()> {
        while self.buf.len() < want && !self.eof {
            self.read_more()?;
        }
        Ok(())
    }

    /// Consume the opening `--B\r\n`.
    pub fn start(&mut self) -> io::Result<()> {
        let open = self.delim.get(2..).unwrap_or(&[]).to_vec();
        self.fill(open.len() + 2)?;
        if !self.buf.starts_with(&open) {
            return Err(bad("the body does not start with the MIME boundary"));
        }
        self.buf.consume(open.len());
        self.after_delimiter()
    }

    fn after_delimiter(&mut self) -> io::Result<()> {
        self.fill(2)?;
        if self.buf.starts_with(b"--") {
            self.finished = true;
            self.buf.consume(2);
            return Ok(());
        }
        if self.buf.starts_with(b"\r\n") {
            self.buf.consume(2);
            return Ok(());
        }
        Err(bad("malformed MIME boundary line"))
    }

    /// The body the parts come from (to answer its sender between parts).
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Whether the closing boundary has been read.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Read the next part's headers (names lower-cased). `None` after the
    /// last part.
    pub fn next_part(&mut self) -> io::Result<Option<Vec<(String, String)>>> {
        if self.in_body {
            // Skip the rest of the current body.
            let mut sink = [0u8; 64 * 1024];
            while self.read_body(&mut sink)? > 0 {}
        }
        if self.finished {
            return Ok(None);
        }
        loop {
            if let Some(end) = find(self.buf.bytes(), b"\r\n\r\n") {
                let head = String::from_utf8_lossy(self.buf.bytes().get(..end).unwrap_or(&[])).into_owned();
                self.buf.consume(end + 4);
                let headers = head
                    .split("\r\n")
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                self.in_body = true;
                return Ok(Some(headers));
            }
            if self.buf.starts_with(b"\r\n") {
                // A part without headers.
                self.buf.consume(2);
                self.in_body = true;
                return Ok(Some(Vec::new()));
            }
            if self.buf.len() > MAX_HEADERS {
                return Err(bad("MIME part headers too long"));
            }
            if self.eof {
                return Err(bad("the body ended inside MIME part headers"));
            }
            let want = self.buf.len() + 1;
            self.fill(want)?;
        }
    }

    /// Read from the current part's body; 0 at its end.
    pub fn read_body(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.in_body || out.is_empty() {
            return Ok(0);
        }
        let dl = self.delim.len();
        // Read only until the delimiter is in sight: past it the sender may
        // wait for an answer before it sends more (the multiphase commit).
        let mut found = find(self.buf.bytes(), &self.delim);
        while found.is_none() && self.buf.len() < dl + out.len() && !self.eof {
            let scanned = self.buf.len().saturating_sub(dl - 1);
            self.read_more()?;
            // Only what may hold a delimiter not looked at yet.
            found = find(self.buf.bytes().get(scanned..).unwrap_or(&[]), &self.delim).map(|p| p + scanned);
        }
        if let Some(pos) = found {
            if pos == 0 {
                self.buf.consume(dl);
                self.in_body = false;
                self.after_delimiter()?;
                return Ok(0);
            }
            let n = pos.min(out.len());
            out[..n].copy_from_slice(&self.buf.bytes()[..n]);
            self.buf.consume(n);
            return Ok(n);
        }
        if self.eof {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended inside a MIME part"));
        }
        // Keep a possible partial delimiter at the end.
        let safe = self.buf.len().saturating_sub(dl - 1).min(out.len());
        out[..safe].copy_from_slice(&self.buf.bytes()[..safe]);
        self.buf.consume(safe);
        Ok(safe)
    }

    /// Read the whole current body (bounded).
    pub fn read_body_to_end(&mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.read_body(&mut chunk)?;
            if n == 0 {
                return Ok(all);
            }
            all.extend_from_slice(&chunk[..n]);
            if all.len() > limit {
                return Err(bad("MIME part too large"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(b: &str, body: &[u8]) -> Vec<u8> {
        let mut d = format!("--{b}\r\nX-Document: object body\r\n\r\n").into_bytes();
        d.extend_from_slice(body);
        d.extend_from_slice(
            format!(
                "\r\n--{b}\r\nX-Document: object metadata\r\nContent-MD5: x\r\n\r\n{{\"a\": \"1\"}}\r\n--{b}--\r\n"
            )
            .as_bytes(),
        );
        d
    }

    /// A reader that returns one byte per read, to exercise every split.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((b, rest)) if !out.is_empty() => {
                    out[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn reads_body_and_footer_in_any_chunking() {
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8 + b'\r').collect();
        let d = doc("abc123", &body);
        for trickle in [false, true] {
            let mut r: MimeReader<Box<dyn Read>> =
                MimeReader::new(if trickle { Box::new(Trickle(&d)) } else { Box::new(&d[..]) }, "abc123");
            r.start().expect("start");
            let h = r.next_part().expect("part").expect("first");
            assert!(h.contains(&("x-document".into(), "object body".into())));
            let got = r.read_body_to_end(1 << 20).expect("body");
            assert_eq!(got, body);
            let h = r.next_part().expect("part").expect("footer");
            assert!(h.contains(&("content-md5".into(), "x".into())));
            assert_eq!(r.read_body_to_end(1024).expect("json"), b"{\"a\": \"1\"}");
            assert!(r.next_part().expect("end").is_none());
        }
    }

    #[test]
    fn truncated_documents_are_errors() {
        let d = doc("b", b"data");
        let cut = &d[..d.len() - 30];
        let mut r = MimeReader::new(cut, "b");
        r.start().expect("start");
        r.next_part().expect("part");
        r.read_body_to_end(100).expect("body");
        let res = r.next_part().and_then(|_| r.read_body_to_end(100));
        assert!(res.is_err());
        assert!(MimeReader::new(&b"nope"[..], "b").start().is_err());
    }
}
