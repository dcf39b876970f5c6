//! The writer: Python 3's `pickle.dumps(obj, protocol=2)` shape for the
//! values Swift stores (metadata dicts of bytes, hashes.pkl, async
//! pendings, REPLICATE answers).

use super::Value;

/// Append a `str` (protocol 2).
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_utf8(out, s.as_bytes());
}

/// Append a `str` from bytes the caller knows are UTF-8 (protocol 2).
pub fn put_utf8(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'X');
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Append `bytes` the way Python 3 pickles `bytes` at protocol 2.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.is_empty() {
        out.extend_from_slice(b"c__builtin__\nbytes\n)R");
        return;
    }
    out.extend_from_slice(b"c_codecs\nencode\n");
    let latin1: String = b.iter().map(|&c| c as char).collect();
    put_str(out, &latin1);
    put_str(out, "latin1");
    out.extend_from_slice(b"\x86R");
}

/// Append a value (protocol 2). `Str` becomes a `str`, `Bytes` becomes
/// `bytes` (Python 3's encoding), dicts keep their order.
pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::None => out.push(b'N'),
        Value::Bool(true) => out.push(0x88),
        Value::Bool(false) => out.push(0x89),
        Value::Int(i) => {
            if let Ok(small) = i32::try_from(*i) {
                out.push(b'J');
                out.extend_from_slice(&small.to_le_bytes());
            } else {
                out.push(0x8a);
                out.push(8);
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
        Value::Float(f) => {
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => put_str(out, s),
        Value::Bytes(b) => put_bytes(out, b),
        Value::Tuple(items) => {
            out.push(b'(');
            for i in items {
                put_value(out, i);
            }
            out.push(b't');
        }
        Value::List(items) => {
            out.push(b']');
            if !items.is_empty() {
                out.push(b'(');
                for i in items {
                    put_value(out, i);
                }
                out.push(b'e');
            }
        }
        Value::Dict(items) => {
            out.push(b'}');
            if !items.is_empty() {
                out.push(b'(');
                for (k, v) in items {
                    put_value(out, k);
                    put_value(out, v);
                }
                out.push(b'u');
            }
        }
        Value::Global(m, n) => {
            out.push(b'c');
            out.extend_from_slice(m.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(n.as_bytes());
            out.push(b'\n');
        }
    }
}

/// A whole protocol-2 pickle of one value.
pub fn dumps(v: &Value) -> Vec<u8> {
    let mut out = vec![0x80, 2];
    put_value(&mut out, v);
    out.push(b'.');
    out
}

/// Python's pickle memo, as the writer of a metadata dict fills it: every
/// object written gets the next index (`BINPUT`), and an object written
/// again — the same Python object, not an equal one — is fetched from it
/// (`BINGET`). What is the same object in Swift's `pickle.dumps` of
/// `_encode_metadata(metadata)`: the `_codecs.encode` and `bytes` globals,
/// the `'latin1'` string, and the empty and one-byte `bytes` values, which
/// CPython keeps as singletons.
#[derive(Default)]
struct Memo {
    next: u32,
    codecs_encode: Option<u32>,
    builtin_bytes: Option<u32>,
    latin1: Option<u32>,
    /// The singleton `bytes` values written so far, by their byte (256:
    /// the empty one).
    singletons: std::collections::HashMap<u16, u32>,
}

impl Memo {
    fn put(&mut self, out: &mut Vec<u8>) -> u32 {
        let i = self.next;
        self.next += 1;
        match u8::try_from(i) {
            Ok(small) => out.extend_from_slice(&[b'q', small]),
            Err(_) => {
                out.push(b'r');
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
        i
    }

    fn get(out: &mut Vec<u8>, i: u32) {
        match u8::try_from(i) {
            Ok(small) => out.extend_from_slice(&[b'h', small]),
            Err(_) => {
                out.push(b'j');
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }

    /// Write `raw` once (memoized), or fetch it from the memo in `slot`.
    fn shared(&mut self, out: &mut Vec<u8>, slot: fn(&mut Memo) -> &mut Option<u32>, write: impl FnOnce(&mut Vec<u8>)) {
        match *slot(self) {
            Some(i) => Memo::get(out, i),
            None => {
                write(out);
                let i = self.put(out);
                *slot(self) = Some(i);
            }
        }
    }

    /// `bytes` as Python 3 pickles them at protocol 2, memo included.
    fn bytes(&mut self, out: &mut Vec<u8>, b: &[u8]) {
        let singleton = match b {
            [] => Some(256),
            [c] => Some(u16::from(*c)),
            _ => None,
        };
        if let Some(i) = singleton.and_then(|k| self.singletons.get(&k)) {
            Memo::get(out, *i);
            return;
        }
        if b.is_empty() {
            self.shared(out, |m| &mut m.builtin_bytes, |o| o.extend_from_slice(b"c__builtin__\nbytes\n"));
            out.extend_from_slice(b")R");
        } else {
            self.shared(out, |m| &mut m.codecs_encode, |o| o.extend_from_slice(b"c_codecs\nencode\n"));
            let latin1: String = b.iter().map(|&c| c as char).collect();
            put_str(out, &latin1);
            self.put(out);
            self.shared(out, |m| &mut m.latin1, |o| put_str(o, "latin1"));
            out.push(0x86);
            self.put(out);
            out.push(b'R');
        }
        let i = self.put(out);
        if let Some(k) = singleton {
            self.singletons.insert(k, i);
        }
    }
}

/// How many items Python's pickler writes per `SETITEMS`.
const BATCH: usize = 1000;

/// Swift's object metadata, a dict of bytes to bytes, byte for byte as
/// Swift writes it (`pickle.dumps(_encode_metadata(metadata), 2)`), so a
/// file's xattrs are the same size whichever server wrote it. A pair with a
/// non-empty key is written first so the `_codecs` marker lands in the
/// first 32 bytes.
pub fn dumps_metadata(items: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut ordered: Vec<&(Vec<u8>, Vec<u8>)> = items.iter().filter(|(k, _)| !k.is_empty()).collect();
    ordered.extend(items.iter().filter(|(k, _)| k.is_empty()));
    let mut memo = Memo::default();
    let mut out = vec![0x80, 2, b'}'];
    memo.put(&mut out);
    for batch in ordered.chunks(BATCH) {
        if let [(k, v)] = batch {
            memo.bytes(&mut out, k);
            memo.bytes(&mut out, v);
            out.push(b's');
        } else {
            out.push(b'(');
            for (k, v) in batch {
                memo.bytes(&mut out, k);
                memo.bytes(&mut out, v);
            }
            out.push(b'u');
        }
    }
    out.push(b'.');
    out
}
