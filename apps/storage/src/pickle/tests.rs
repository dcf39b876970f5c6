//! The pickle reader and writer against Python's bytes.

use super::*;

#[test]
fn metadata_round_trips_with_the_marker_in_the_first_32_bytes() {
    let items = vec![
        (b"name".to_vec(), b"/a/c/o".to_vec()),
        (b"X-Object-Meta-Caf\xc3\xa9".to_vec(), b"\xc3\xa9t\xc3\xa9".to_vec()),
        (b"Empty".to_vec(), Vec::new()),
    ];
    let p = dumps_metadata(&items);
    assert!(p.windows(14).take(32 - 13).any(|w| w == b"_codecs\nencode"));
    assert_eq!(loads_metadata(&p).expect("loads"), items);
}

#[test]
fn reads_what_python3_writes() {
    // pickle.dumps({b'name': b'/a/c/o', b'Content-Length': b'3', b'E': b''}, protocol=2)
    let py = b"\x80\x02}q\x00(c_codecs\nencode\nq\x01X\x04\x00\x00\x00nameq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05h\x01X\x06\x00\x00\x00/a/c/oq\x06h\x03\x86q\x07Rq\x08h\x01X\x0e\x00\x00\x00Content-Lengthq\th\x03\x86q\nRq\x0bh\x01X\x01\x00\x00\x003q\x0ch\x03\x86q\rRq\x0eh\x01X\x01\x00\x00\x00Eq\x0fh\x03\x86q\x10Rq\x11c__builtin__\nbytes\nq\x12)Rq\x13u.";
    let m = loads_metadata(py).expect("loads");
    assert_eq!(dumps_metadata(&m), py.to_vec(), "written as Python writes it");
    assert_eq!(m[0], (b"name".to_vec(), b"/a/c/o".to_vec()));
    assert_eq!(m[1], (b"Content-Length".to_vec(), b"3".to_vec()));
    assert_eq!(m[2], (b"E".to_vec(), Vec::new()));
}

#[test]
fn metadata_is_written_byte_for_byte_as_swift_writes_it() {
    let pairs = |v: &[(&str, &str)]| -> Vec<(Vec<u8>, Vec<u8>)> {
        v.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    };
    // pickle.dumps(_encode_metadata({'A': '1', 'B': '1', 'C': '', 'D': '',
    // 'E': 'xy', 'F': 'xy'}), 2): one-byte and empty values are one object.
    let m = pairs(&[("A", "1"), ("B", "1"), ("C", ""), ("D", ""), ("E", "xy"), ("F", "xy")]);
    let py = b"\x80\x02}q\x00(c_codecs\nencode\nq\x01X\x01\x00\x00\x00Aq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05h\x01X\x01\x00\x00\x001q\x06h\x03\x86q\x07Rq\x08h\x01X\x01\x00\x00\x00Bq\th\x03\x86q\nRq\x0bh\x08h\x01X\x01\x00\x00\x00Cq\x0ch\x03\x86q\rRq\x0ec__builtin__\nbytes\nq\x0f)Rq\x10h\x01X\x01\x00\x00\x00Dq\x11h\x03\x86q\x12Rq\x13h\x10h\x01X\x01\x00\x00\x00Eq\x14h\x03\x86q\x15Rq\x16h\x01X\x02\x00\x00\x00xyq\x17h\x03\x86q\x18Rq\x19h\x01X\x01\x00\x00\x00Fq\x1ah\x03\x86q\x1bRq\x1ch\x01X\x02\x00\x00\x00xyq\x1dh\x03\x86q\x1eRq\x1fu.";
    assert_eq!(dumps_metadata(&m), py.to_vec());
    // One item: SETITEM. 300 items: memo indexes past 255 (LONG_BINPUT,
    // LONG_BINGET), and the reader takes them back.
    let one = pairs(&[("name", "/a/c/o")]);
    let p = dumps_metadata(&one);
    assert!(p.ends_with(b"s."), "{p:?}");
    assert_eq!(loads_metadata(&p).expect("one"), one);
    let many: Vec<(Vec<u8>, Vec<u8>)> = (0..300).map(|i| (format!("K{i}").into_bytes(), b"v".to_vec())).collect();
    let p = dumps_metadata(&many);
    assert!(p.windows(1).any(|w| w == b"r") && p.contains(&b'j'));
    assert_eq!(loads_metadata(&p).expect("many"), many);
}

#[test]
fn reads_protocol_0_and_high_protocols() {
    // pickle.dumps({'op': 'PUT', 'n': 3}, protocol=0)
    let p0 = b"(dp0\nVop\np1\nVPUT\np2\nsVn\np3\nI3\ns.";
    let v = loads(p0).expect("p0");
    assert_eq!(v.get("op"), Some(&Value::Str("PUT".into())));
    assert_eq!(v.get("n"), Some(&Value::Int(3)));
    // pickle.dumps({b'k': b'v'}, protocol=4)
    let p4 = b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00}\x94C\x01k\x94C\x01v\x94s.";
    assert_eq!(loads_metadata(p4).expect("p4"), vec![(b"k".to_vec(), b"v".to_vec())]);
}

#[test]
fn nested_values_round_trip() {
    let v = Value::Dict(vec![
        (Value::Str("op".into()), Value::Str("PUT".into())),
        (Value::Str("headers".into()), Value::Dict(vec![(Value::Str("X-Size".into()), Value::Str("3".into()))])),
        (Value::Str("n".into()), Value::Int(-5_000_000_000)),
        (Value::Str("l".into()), Value::List(vec![Value::None, Value::Bool(true), Value::Float(1.5)])),
    ]);
    assert_eq!(loads(&dumps(&v)).expect("round trip"), v);
}

#[test]
fn hostile_input_is_refused_not_obeyed() {
    for bad in [
        &b"cos\nsystem\n(S'ls'\ntR."[..],
        b"\x80\x02}(",
        b"X\xff\xff\xff\xff",
        b"u.",
        b"\x80\x02}q\x00(K\x01u.",
        b"h\x05.",
        b"",
    ] {
        assert!(loads(bad).is_err() || loads_metadata(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_repeated_dict_key_replaces_the_value_where_it_first_was() {
    // {'a': 1, b'a': 2, 'a': 3} then {'b': 4, b'a': 5}, as two SETITEMS;
    // Python reads it as {'a': 3, b'a': 5, 'b': 4}.
    let p =
        b"\x80\x02}(X\x01\x00\x00\x00aK\x01C\x01aK\x02X\x01\x00\x00\x00aK\x03u(X\x01\x00\x00\x00bK\x04C\x01aK\x05u.";
    let v = loads(p).expect("loads");
    assert_eq!(
        v,
        Value::Dict(vec![
            (Value::Str("a".into()), Value::Int(3)),
            (Value::Bytes(b"a".to_vec()), Value::Int(5)),
            (Value::Str("b".into()), Value::Int(4)),
        ])
    );
    // Thousands of keys (a full hashes.pkl) in Python's order.
    let items: Vec<(Value, Value)> =
        (0..4096).map(|i| (Value::Str(format!("{i:03x}")), Value::Str(i.to_string()))).collect();
    assert_eq!(loads(&dumps(&Value::Dict(items.clone()))).expect("loads"), Value::Dict(items));
}
