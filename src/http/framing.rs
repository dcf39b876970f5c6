//! Body framing: Content-Length and chunked decoding, chunked encoding.
//!
//! A [`BodyDecoder`] is fed whatever bytes have arrived and appends decoded
//! body bytes to an output buffer, never more than the caller allows, and
//! reports how much input it consumed. The chunked decoder is a byte-level
//! state machine:
//!
//! ```text
//! Size ─CRLF─► Data(n) ─n bytes─► DataEnd ─CRLF─► Size     (n > 0)
//! Size ─CRLF─► Trailer ─(field CRLF)*─ CRLF ─► Done        (n = 0)
//! ```
//!
//! Chunk extensions (`;name=value`) and trailer fields are accepted and
//! discarded. Only CRLF ends a line; a bare LF or CR, a size that is not hex,
//! has more than 16 digits, or a size line or trailer longer than the limits is
//! an error (the connection cannot be resynchronised, so it is closed).

use super::HttpError;

/// Longest chunk-size line, extensions included.
const MAX_SIZE_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size { value: u64, digits: u8 },
    /// After the digits: optional whitespace and extensions up to CR.
    SizeExt { value: u64 },
    /// Saw CR after a size line; LF must follow.
    SizeLf { value: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Chunk data ended; CR must follow.
    DataCr,
    /// CR after data; LF must follow.
    DataLf,
    /// At the start of a trailer line (an empty one ends the body).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// CR at the end of a trailer field line.
    TrailerLineLf,
    /// CR of the final empty line.
    FinalLf,
    /// The whole body has been decoded.
    Done,
}

/// Decodes `Transfer-Encoding: chunked`.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    line: usize,
    trailer_bytes: usize,
    max_trailer: usize,
}

impl ChunkedDecoder {
    /// A decoder that allows up to `max_trailer` bytes of trailer fields.
    pub fn new(max_trailer: usize) -> ChunkedDecoder {
        ChunkedDecoder { state: State::Size { value: 0, digits: 0 }, line: 0, trailer_bytes: 0, max_trailer }
    }

    /// Whether the terminating chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Read chunks again after the terminating one: Swift's multiphase PUT
    /// ends its data phase with a zero-length chunk and, once the server
    /// sent another `100 Continue`, sends its commit as more chunks.
    pub fn resume(&mut self) {
        if self.state == State::Done {
            self.state = State::Size { value: 0, digits: 0 };
            self.line = 0;
        }
    }

    /// Body bytes that come next on the wire with no framing among them
    /// (the rest of the current chunk's data).
    pub fn data_run(&self) -> u64 {
        match self.state {
            State::Data { remaining } => remaining,
            _ => 0,
        }
    }

    /// `n` bytes of the current data run were read past the decoder.
    fn skip_data(&mut self, n: u64) {
        if let State::Data { remaining } = self.state {
            let left = remaining.saturating_sub(n);
            self.state = if left == 0 { State::DataCr } else { State::Data { remaining: left } };
        }
    }

    /// Decode from `input`, appending at most `room` body bytes to `out`.
    /// Returns the number of input bytes consumed. Stops early when `room` is
    /// used up or the body is complete.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>, room: usize) -> Result<usize, HttpError> {
        let mut i = 0;
        let mut room = room;
        while i < input.len() {
            let Some(&b) = input.get(i) else { break };
            match self.state {
                State::Done => break,
                State::Data { remaining } => {
                    if room == 0 {
                        break;
                    }
                    let avail = input.len() - i;
                    let take = (remaining.min(avail as u64) as usize).min(room);
                    out.extend_from_slice(input.get(i..i + take).unwrap_or(&[]));
                    i += take;
                    room -= take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 { State::DataCr } else { State::Data { remaining: left } };
                    continue;
                }
                State::Size { value, digits } => {
                    self.bump_line()?;
                    if let Some(d) = hex(b) {
                        if digits >= 16 {
                            return Err(HttpError::BadRequest("chunk size too large"));
                        }
                        self.state = State::Size { value: (value << 4) | u64::from(d), digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(HttpError::BadRequest("invalid chunk size"));
                    } else if b == b'\r' {
                        self.state = State::SizeLf { value };
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = State::SizeExt { value };
                    } else {
                        return Err(HttpError::BadRequest("invalid chunk size"));
                    }
                }
                State::SizeExt { value } => {
                    self.bump_line()?;
                    match b {
                        b'\r' => self.state = State::SizeLf { value },
                        b'\n' | 0 => return Err(HttpError::BadRequest("invalid chunk extension")),
                        _ => {}
                    }
                }
                State::SizeLf { value } => {
                    if b != b'\n' {
                        return Err(HttpError::BadRequest("chunk size line not ended by CRLF"));
                    }
                    self.line = 0;
                    self.state = if value == 0 { State::TrailerStart } else { State::Data { remaining: value } };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(HttpError::BadRequest("chunk data not followed by CRLF"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadRequest("chunk data not followed by CRLF"));
                    }
                    self.state = State::Size { value: 0, digits: 0 };
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::FinalLf;
                    } else if b == b'\n' || b == b' ' || b == b'\t' || b == 0 {
                        return Err(HttpError::BadRequest("invalid trailer"));
                    } else {
                        self.bump_trailer()?;
                        self.state = State::TrailerLine;
                    }
                }
                State::TrailerLine => {
                    self.bump_trailer()?;
                    match b {
                        b'\r' => self.state = State::TrailerLineLf,
                        b'\n' | 0 => return Err(HttpError::BadRequest("invalid trailer")),
                        _ => {}
                    }
                }
                State::TrailerLineLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadRequest("trailer line not ended by CRLF"));
                    }
                    self.state = State::TrailerStart;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(HttpError::BadRequest("chunked body not ended by CRLF"));
                    }
                    self.state = State::Done;
                    i += 1;
                    break;
                }
            }
            i += 1;
        }
        Ok(i)
    }

    fn bump_line(&mut self) -> Result<(), HttpError> {
        self.line += 1;
        if self.line > MAX_SIZE_LINE {
            return Err(HttpError::BadRequest("chunk size line too long"));
        }
        Ok(())
    }

    fn bump_trailer(&mut self) -> Result<(), HttpError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailer {
            return Err(HttpError::HeadersTooLarge("trailer fields too large"));
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a request body of either framing.
#[derive(Debug, Clone)]
pub enum BodyDecoder {
    /// `Content-Length`: this many bytes remain.
    Length(u64),
    /// Chunked.
    Chunked(ChunkedDecoder),
}

impl BodyDecoder {
    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Length(n) => *n == 0,
            BodyDecoder::Chunked(c) => c.is_done(),
        }
    }

    /// A chunked body read past its terminating chunk (see
    /// [`ChunkedDecoder::resume`]); `false` for a length-delimited one.
    pub fn resume(&mut self) -> bool {
        match self {
            BodyDecoder::Chunked(c) => {
                c.resume();
                true
            }
            BodyDecoder::Length(_) => false,
        }
    }

    /// Bytes still expected, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length(n) => Some(*n),
            BodyDecoder::Chunked(c) if c.is_done() => Some(0),
            BodyDecoder::Chunked(_) => None,
        }
    }

    /// Body bytes that come next on the wire unframed: a reader may take up
    /// to this many straight off the socket and report them with
    /// [`BodyDecoder::skip_data`], saving a copy through the read buffer.
    pub fn data_run(&self) -> u64 {
        match self {
            BodyDecoder::Length(n) => *n,
            BodyDecoder::Chunked(c) => c.data_run(),
        }
    }

    /// `n` bytes (at most [`BodyDecoder::data_run`]) were read unframed.
    pub fn skip_data(&mut self, n: u64) {
        match self {
            BodyDecoder::Length(left) => *left = left.saturating_sub(n),
            BodyDecoder::Chunked(c) => c.skip_data(n),
        }
    }

    /// Decode from `input` into `out` (at most `room` bytes); returns input
    /// bytes consumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>, room: usize) -> Result<usize, HttpError> {
        match self {
            BodyDecoder::Length(n) => {
                let take = (*n).min(input.len() as u64).min(room as u64) as usize;
                out.extend_from_slice(input.get(..take).unwrap_or(&[]));
                *n -= take as u64;
                Ok(take)
            }
            BodyDecoder::Chunked(c) => c.decode(input, out, room),
        }
    }
}

/// Append one chunk (size line, data, CRLF) of a chunked response.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The terminating chunk of a chunked response.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        let n = d.decode(input, &mut out, usize::MAX)?;
        Ok((out, n, d.is_done()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let (out, n, done) = decode_all(b"3;x=y\r\nabc\r\n2 \r\nde\r\n0\r\nT: 1\r\n\r\nNEXT").expect("valid");
        assert_eq!(out, b"abcde");
        assert!(done);
        assert_eq!(n, 31);
    }

    #[test]
    fn zero_length_body_is_just_the_last_chunk() {
        let (out, n, done) = decode_all(b"0\r\n\r\n").expect("valid");
        assert!(out.is_empty() && done && n == 5);
    }

    #[test]
    fn bad_chunks_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcX",
            b"11111111111111111\r\n",
            b"3\r\nabc\r\n0\r\n\n",
            b"-1\r\n",
            b"\r\n",
        ] {
            assert!(decode_all(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn room_limits_output_and_resumes() {
        let mut d = ChunkedDecoder::new(64);
        let mut out = Vec::new();
        let input = b"5\r\nhello\r\n0\r\n\r\n";
        let n = d.decode(input, &mut out, 2).expect("valid");
        assert_eq!(out, b"he");
        let m = d.decode(&input[n..], &mut out, 100).expect("valid");
        assert_eq!(out, b"hello");
        assert!(d.is_done());
        assert_eq!(n + m, input.len());
    }

    #[test]
    fn data_read_past_the_decoder_is_accounted_as_the_chunk_it_belongs_to() {
        // A reader takes a chunk's data straight off the wire at every
        // point where the decoder says a data run comes next, and feeds it
        // only the framing: the body is the same as decoded whole.
        let input = b"4\r\nwiki\r\n5;e\r\npedia\r\n0\r\n\r\n";
        for take in 1..=5 {
            let mut d = BodyDecoder::Chunked(ChunkedDecoder::new(64));
            let mut out = Vec::new();
            let mut at = 0;
            while !d.is_done() {
                let run = d.data_run() as usize;
                if run > 0 {
                    let n = run.min(take).min(input.len() - at);
                    out.extend_from_slice(&input[at..at + n]);
                    d.skip_data(n as u64);
                    at += n;
                } else {
                    at += d.decode(&input[at..at + 1], &mut out, usize::MAX).expect("valid framing");
                }
            }
            assert_eq!(out, b"wikipedia", "taking {take} at a time");
            assert_eq!(at, input.len());
        }
        let mut d = BodyDecoder::Length(10);
        assert_eq!(d.data_run(), 10);
        d.skip_data(4);
        assert_eq!((d.data_run(), d.remaining()), (6, Some(6)));
        d.skip_data(6);
        assert!(d.is_done());
    }

    #[test]
    fn every_split_point_decodes_the_same() {
        let input = b"4\r\nwiki\r\n5;e\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX: y\r\n\r\n";
        for split in 0..input.len() {
            let mut d = ChunkedDecoder::new(64);
            let mut out = Vec::new();
            let a = d.decode(&input[..split], &mut out, usize::MAX).expect("valid prefix");
            assert_eq!(a, split);
            d.decode(&input[split..], &mut out, usize::MAX).expect("valid rest");
            assert_eq!(out, b"wikipedia in\r\n\r\nchunks.");
            assert!(d.is_done());
        }
    }

    #[test]
    fn length_decoder_counts_down() {
        let mut d = BodyDecoder::Length(4);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"abcdef", &mut out, 10).expect("ok"), 4);
        assert!(d.is_done());
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn encoder_frames_chunks() {
        let mut out = Vec::new();
        encode_chunk(&mut out, b"hello world, this is 26 b");
        out.extend_from_slice(LAST_CHUNK);
        let (decoded, _, done) = decode_all(&out).expect("round trip");
        assert_eq!(decoded, b"hello world, this is 26 b");
        assert!(done);
    }
}
