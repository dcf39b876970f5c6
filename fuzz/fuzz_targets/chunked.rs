//! The chunked body decoder: never panics, never emits more than it was
//! given room for, and decodes the same bytes the same way whether they
//! arrive whole or split at an arbitrary point.
#![no_main]
use aerie::http::framing::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

fn run(pieces: &[&[u8]]) -> (Vec<u8>, Result<bool, String>) {
    let mut d = ChunkedDecoder::new(4096);
    let mut out = Vec::new();
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() && !d.is_done() {
            let before = out.len();
            match d.decode(rest, &mut out, 1 << 16) {
                Ok(used) => {
                    assert!(used <= rest.len());
                    assert!(out.len() - before <= 1 << 16);
                    if used == 0 {
                        break;
                    }
                    rest = &rest[used..];
                }
                Err(e) => return (out, Err(format!("{e:?}"))),
            }
        }
    }
    (out, Ok(d.is_done()))
}

fuzz_target!(|data: &[u8]| {
    let whole = run(&[data]);
    if let Some(&b) = data.first() {
        let cut = b as usize % (data.len() + 1);
        let split = run(&[&data[..cut], &data[cut..]]);
        // Errors may be found at different points, but a body decoded
        // without error is the same.
        if whole.1.is_ok() && split.1.is_ok() && whole.1 == split.1 {
            assert_eq!(whole.0, split.0);
        }
    }
});
