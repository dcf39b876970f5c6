//! Python pickles, as far as Swift's on-disk formats need them.
//!
//! *Writing.* Object metadata (`user.swift.metadata`) is a protocol-2 pickle
//! of a dict of bytes to bytes, in the exact shape Python 3 produces for
//! `bytes` — each value as `_codecs.encode(<latin-1 text>, 'latin1')` — because
//! Swift decides how to decode the strings by looking for `_codecs\nencode`
//! in the first 32 bytes (§5.3). Async-pending records use the same writer
//! with nested dicts and plain strings.
//!
//! *Reading* is a small, restricted pickle machine: it knows the opcodes of
//! protocols 0 to 5 that dicts, tuples, lists, strings, bytes, ints, floats,
//! booleans and `None` use, and only the globals `_codecs.encode` and
//! `__builtin__/builtins.bytes`. Anything else — other globals, object
//! construction — is refused, as Swift's own restricted unpickler refuses
//! it, so a corrupt or hostile xattr can never do more than fail to parse.
//! Sizes are bounded by the input; nothing is trusted.

mod dump;
pub use dump::{dumps, dumps_metadata, put_bytes, put_str, put_utf8, put_value};

use std::fmt;

/// A decoded pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`
    None,
    /// `True`/`False`
    Bool(bool),
    /// An int that fits in an i64.
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string (Python `str`, or py2 `unicode`).
    Str(String),
    /// Bytes (Python 3 `bytes`, or a py2 `str`).
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A global reference (only the allowed ones appear transiently).
    Global(String, String),
}

impl Value {
    /// The value as bytes (text is UTF-8-encoded).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            Value::Str(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The value's bytes, taken (text is UTF-8-encoded).
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::Bytes(b) => Some(b),
            Value::Str(s) => Some(s.into_bytes()),
            _ => None,
        }
    }

    /// The value's text, taken (bytes only when UTF-8).
    pub fn into_string(self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => String::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Look up a dict entry by text or bytes key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| k.as_bytes() == Some(key.as_bytes())).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A dict key that can be hashed: text or bytes (never equal to each other).
fn key_of(v: &Value) -> Option<(bool, &[u8])> {
    match v {
        Value::Str(s) => Some((true, s.as_bytes())),
        Value::Bytes(b) => Some((false, b)),
        _ => None,
    }
}

/// FNV-1a: keys here are short and not chosen to collide on purpose
/// (a pickle's author could only slow its own reading down).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A repeated key replaces the value where the key first was, as in
/// Python (Swift never writes one, so the usual case finds none). Found
/// through borrowed keys: a hashes.pkl has thousands of suffixes, and
/// searching the list for each would be quadratic.
fn fold_repeated_keys(d: &mut Vec<(Value, Value)>) {
    // Keys in strictly increasing order (aerie's own dicts, from sorted
    // maps) cannot repeat: no index needed.
    let mut keys = d.iter().map(|(k, _)| key_of(k));
    if let Some(Some(mut prev)) = keys.next() {
        if keys.all(|k| k.is_some_and(|k| std::mem::replace(&mut prev, k) < k)) {
            return;
        }
    }
    let mut seen: std::collections::HashMap<(bool, &[u8]), usize, std::hash::BuildHasherDefault<Fnv>> =
        std::collections::HashMap::with_capacity_and_hasher(d.len(), Default::default());
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    for (i, (k, _)) in d.iter().enumerate() {
        match key_of(k) {
            Some(key) => match seen.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => repeats.push((*e.get(), i)),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                }
            },
            None => {
                if let Some(j) = d[..i].iter().position(|(ek, _)| ek == k) {
                    repeats.push((j, i));
                }
            }
        }
    }
    drop(seen);
    if repeats.is_empty() {
        return;
    }
    // In order, so the last value wins; then the later copies go.
    for &(first, later) in &repeats {
        let v = d[later].1.clone();
        d[first].1 = v;
    }
    for &(_, later) in repeats.iter().rev() {
        d.remove(later);
    }
}

/// Metadata as (name, value) byte pairs, in stored order.
pub type Metadata = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError(pub String);

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad pickle: {}", self.0)
    }
}

impl std::error::Error for PickleError {}

fn err<T>(m: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError(m.into()))
}

// ---------------------------------------------------------------- writing

// ---------------------------------------------------------------- reading

/// Nesting and size limits for untrusted input.
const MAX_STACK: usize = 100_000;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u64, Value>,
    /// Whether PUTs are kept. Python memoizes every string it writes but
    /// fetches one back only when the same object is written twice, which
    /// Swift's pickles rarely do: a first run keeps nothing (no copy per
    /// string) and a GET sends the reading round again with this on.
    memo_on: bool,
    /// A GET was met with `memo_on` off.
    memo_wanted: bool,
}

impl<'a> Machine<'a> {
    fn byte(&mut self) -> Result<u8, PickleError> {
        let b = *self.data.get(self.pos).ok_or_else(|| PickleError("truncated".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).ok_or_else(|| PickleError("length overflow".into()))?;
        let s = self.data.get(self.pos..end).ok_or_else(|| PickleError("truncated".into()))?;
        self.pos = end;
        Ok(s)
    }

    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| PickleError("unterminated line".into()))?;
        let l = self.take(n)?;
        self.pos += 1;
        Ok(l)
    }

    fn u32(&mut self) -> Result<usize, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<usize, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(a)).map_err(|_| PickleError("length overflow".into()))
    }

    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return err("stack too deep");
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or_else(|| PickleError("stack underflow".into()))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| PickleError("no mark".into()))?;
        if m > self.stack.len() {
            return err("bad mark");
        }
        Ok(self.stack.split_off(m))
    }

    /// Memoize the top of the stack (when the memo is kept).
    fn put(&mut self, k: u64) -> Result<(), PickleError> {
        let top = self.stack.last().ok_or_else(|| PickleError("memo of nothing".into()))?;
        if self.memo_on {
            self.memo.insert(k, top.clone());
        }
        Ok(())
    }

    fn top_mut(&mut self) -> Result<&mut Value, PickleError> {
        self.stack.last_mut().ok_or_else(|| PickleError("stack underflow".into()))
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if items.len() % 2 != 0 {
            return err("odd number of dict items");
        }
        let Value::Dict(d) = self.top_mut()? else { return err("SETITEMS on a non-dict") };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        fold_repeated_keys(d);
        Ok(())
    }

    fn utf8(&self, b: &[u8]) -> Result<String, PickleError> {
        String::from_utf8(b.to_vec()).map_err(|_| PickleError("invalid UTF-8 in a string".into()))
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Global(module, name) = callable else { return err("REDUCE on a non-global") };
        let Value::Tuple(args) = args else { return err("REDUCE arguments are not a tuple") };
        match (module.as_str(), name.as_str(), args.as_slice()) {
            ("_codecs", "encode", [Value::Str(s), Value::Str(enc)]) if enc == "latin1" || enc == "latin-1" => {
                let mut out = Vec::with_capacity(s.len());
                for ch in s.chars() {
                    let c = u32::from(ch);
                    if c > 255 {
                        return err("non-latin-1 character in _codecs.encode");
                    }
                    out.push(c as u8);
                }
                Ok(Value::Bytes(out))
            }
            ("_codecs", "encode", [Value::Str(s), Value::Str(enc)]) if enc == "utf-8" || enc == "utf8" => {
                Ok(Value::Bytes(s.as_bytes().to_vec()))
            }
            ("__builtin__" | "builtins", "bytes", []) => Ok(Value::Bytes(Vec::new())),
            ("__builtin__" | "builtins", "bytes", [Value::List(items)]) => {
                let mut out = Vec::new();
                for i in items {
                    match i {
                        Value::Int(v) if (0..256).contains(v) => out.push(*v as u8),
                        _ => return err("bytes() of a non-byte list"),
                    }
                }
                Ok(Value::Bytes(out))
            }
            _ => err(format!("call of {module}.{name} is not allowed")),
        }
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let op = self.byte()?;
            match op {
                0x80 => {
                    self.byte()?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.push(Value::Dict(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Dict(Vec::new()))?;
                    self.set_items(items)?;
                }
                b']' => self.push(Value::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items))?;
                }
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return err("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Value::Tuple(items))?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    let Value::List(l) = self.top_mut()? else { return err("APPEND on a non-list") };
                    l.push(v);
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let Value::List(l) = self.top_mut()? else { return err("APPENDS on a non-list") };
                    l.extend(items);
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let b = self.take(4)?;
                    self.push(Value::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))))?;
                }
                b'K' => {
                    let b = self.byte()?;
                    self.push(Value::Int(i64::from(b)))?;
                }
                b'M' => {
                    let b = self.take(2)?;
                    self.push(Value::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))))?;
                }
                0x8a => {
                    let n = usize::from(self.byte()?);
                    if n > 8 {
                        return err("int too large");
                    }
                    let b = self.take(n)?;
                    let mut a = if b.last().is_some_and(|x| x & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                    a[..n].copy_from_slice(b);
                    self.push(Value::Int(i64::from_le_bytes(a)))?;
                }
                b'I' | b'L' => {
                    let l = self.line()?;
                    let s = std::str::from_utf8(l).map_err(|_| PickleError("bad int".into()))?;
                    let s = s.trim_end_matches('L');
                    let v = match s {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => Value::Int(s.parse().map_err(|_| PickleError("bad int".into()))?),
                    };
                    self.push(v)?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(a)))?;
                }
                b'F' => {
                    let l = self.line()?;
                    let f = std::str::from_utf8(l).ok().and_then(|s| s.parse().ok());
                    self.push(Value::Float(f.ok_or_else(|| PickleError("bad float".into()))?))?;
                }
                b'X' => {
                    let n = self.u32()?;
                    let b = self.take(n)?;
                    let s = self.utf8(b)?;
                    self.push(Value::Str(s))?;
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?;
                    let s = self.utf8(b)?;
                    self.push(Value::Str(s))?;
                }
                0x8d => {
                    let n = self.u64()?;
                    let b = self.take(n)?;
                    let s = self.utf8(b)?;
                    self.push(Value::Str(s))?;
                }
                b'V' => {
                    let l = self.line()?;
                    let s = raw_unicode_escape(l)?;
                    self.push(Value::Str(s))?;
                }
                b'C' => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?;
                }
                b'B' => {
                    let n = self.u32()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?;
                }
                0x8e => {
                    let n = self.u64()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?;
                }
                b'U' => {
                    let n = usize::from(self.byte()?);
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?;
                }
                b'T' => {
                    let n = self.u32()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?;
                }
                b'S' => {
                    let l = self.line()?;
                    let b = python_repr_string(l)?;
                    self.push(Value::Bytes(b))?;
                }
                b'c' => {
                    let m = self.line()?;
                    let n = self.line()?;
                    let (m, n) = (self.utf8(m)?, self.utf8(n)?);
                    self.push(Value::Global(m, n))?;
                }
                0x93 => {
                    let n = self.pop()?;
                    let m = self.pop()?;
                    match (m, n) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n))?,
                        _ => return err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v)?;
                }
                b'q' => {
                    let k = u64::from(self.byte()?);
                    self.put(k)?;
                }
                b'r' => {
                    let k = self.u32()? as u64;
                    self.put(k)?;
                }
                b'p' => {
                    let l = self.line()?;
                    let k = std::str::from_utf8(l)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| PickleError("bad PUT".into()))?;
                    self.put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.put(k)?;
                }
                b'h' | b'j' | b'g' => {
                    let k = match op {
                        b'h' => u64::from(self.byte()?),
                        b'j' => self.u32()? as u64,
                        _ => {
                            let l = self.line()?;
                            std::str::from_utf8(l)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| PickleError("bad GET".into()))?
                        }
                    };
                    if !self.memo_on {
                        self.memo_wanted = true;
                        return err("GET before the memo is kept");
                    }
                    let v = self.memo.get(&k).cloned().ok_or_else(|| PickleError("unknown memo key".into()))?;
                    self.push(v)?;
                }
                other => return err(format!("opcode 0x{other:02x} is not supported")),
            }
        }
    }
}

/// Protocol-0 `V` strings: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`;
/// other bytes are latin-1).
fn raw_unicode_escape(l: &[u8]) -> Result<String, PickleError> {
    let mut out = String::new();
    let mut i = 0;
    while i < l.len() {
        if l[i] == b'\\' && matches!(l.get(i + 1), Some(b'u') | Some(b'U')) {
            let n = if l[i + 1] == b'u' { 4 } else { 8 };
            let hex = l.get(i + 2..i + 2 + n).ok_or_else(|| PickleError("bad escape".into()))?;
            let v = u32::from_str_radix(std::str::from_utf8(hex).unwrap_or("x"), 16)
                .map_err(|_| PickleError("bad escape".into()))?;
            out.push(char::from_u32(v).ok_or_else(|| PickleError("bad code point".into()))?);
            i += 2 + n;
        } else {
            out.push(l[i] as char);
            i += 1;
        }
    }
    Ok(out)
}

/// Protocol-0 `S` strings: a Python repr in single or double quotes.
fn python_repr_string(l: &[u8]) -> Result<Vec<u8>, PickleError> {
    let q = *l.first().ok_or_else(|| PickleError("empty string".into()))?;
    if !(q == b'\'' || q == b'"') || l.len() < 2 || l[l.len() - 1] != q {
        return err("bad string quoting");
    }
    let body = &l[1..l.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let c = *body.get(i + 1).ok_or_else(|| PickleError("bad escape".into()))?;
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'x' => {
                let h = body.get(i..i + 2).ok_or_else(|| PickleError("bad escape".into()))?;
                out.push(
                    u8::from_str_radix(std::str::from_utf8(h).unwrap_or("x"), 16)
                        .map_err(|_| PickleError("bad escape".into()))?,
                );
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut k = 0;
                while k < 2 && body.get(i).is_some_and(|d| (b'0'..=b'7').contains(d)) {
                    v = v * 8 + u32::from(body[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// Read a pickle.
pub fn loads(data: &[u8]) -> Result<Value, PickleError> {
    let machine = |memo_on| Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Default::default(),
        memo_on,
        memo_wanted: false,
    };
    let mut first = machine(false);
    match first.run() {
        Err(_) if first.memo_wanted => machine(true).run(),
        r => r,
    }
}

/// Read Swift object metadata: a dict whose keys and values are bytes or
/// text. Returns (key, value) byte pairs in stored order.
pub fn loads_metadata(data: &[u8]) -> Result<Metadata, PickleError> {
    let Value::Dict(items) = loads(data)? else { return err("metadata is not a dict") };
    items
        .into_iter()
        .map(|(k, v)| match (k.into_bytes(), v.into_bytes()) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => err("metadata keys and values must be strings"),
        })
        .collect()
}

#[cfg(test)]
mod tests;
