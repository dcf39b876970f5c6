//! The writer: Python 3's `pickle.dumps(obj, protocol=2)` shape for the
//! values Swift stores (metadata dicts of bytes, hashes.pkl, async
//! pendings, REPLICATE answers).

use super::Value;

fn put_unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Append `bytes` the way Python 3 pickles `bytes` at protocol 2.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.is_empty() {
        out.extend_from_slice(b"c__builtin__\nbytes\n)R");
        return;
    }
    out.extend_from_slice(b"c_codecs\nencode\n");
    let latin1: String = b.iter().map(|&c| c as char).collect();
    put_unicode(out, &latin1);
    put_unicode(out, "latin1");
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
        Value::Str(s) => put_unicode(out, s),
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

/// Swift's object metadata: a dict of bytes to bytes. A pair with a
/// non-empty key is written first so the `_codecs` marker lands in the first
/// 32 bytes.
pub fn dumps_metadata(items: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut ordered: Vec<&(Vec<u8>, Vec<u8>)> = items.iter().filter(|(k, _)| !k.is_empty()).collect();
    ordered.extend(items.iter().filter(|(k, _)| k.is_empty()));
    let mut out = vec![0x80, 2, b'}'];
    if !ordered.is_empty() {
        out.push(b'(');
        for (k, v) in ordered {
            put_bytes(&mut out, k);
            put_bytes(&mut out, v);
        }
        out.push(b'u');
    }
    out.push(b'.');
    out
}
