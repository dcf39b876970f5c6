//! Swift path handling: percent-decoding, UTF-8 checks, splitting, device
//! names. Never panics; a device name accepted as safe cannot leave the
//! devices root (no `/`, NUL, `.` or `..`); quoting round-trips through
//! decoding. (NUL may appear in names: it marks Swift's reserved
//! namespace, checked separately.)
#![no_main]
use aerie_storage::path::{
    decode_path, form_decode, is_safe_device_name, percent_decode, quote, split_path, validate_device_partition,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = form_decode(data);
    let decoded = percent_decode(data);
    if let Ok(path) = decode_path(data) {
        assert_eq!(percent_decode(quote(&path).as_bytes()), path.as_bytes(), "quote round-trips");
        for (min, max, rest) in [(2, 2, false), (3, 5, true), (4, 5, true)] {
            if let Ok(parts) = split_path(&path, min, max, rest) {
                if let Some(Some(device)) = parts.first() {
                    // What the server checks before it joins a device to the root.
                    if validate_device_partition(device, "0").is_ok() && is_safe_device_name(device) {
                        assert!(
                            !device.contains('/')
                                && !device.contains('\0')
                                && device != ".."
                                && device != "."
                                && !device.is_empty(),
                            "unsafe device name accepted: {device:?}"
                        );
                    }
                }
            }
        }
    }
    let _ = decoded;
});
