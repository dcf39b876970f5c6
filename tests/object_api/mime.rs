//! MIME PUTs with footers (the proxy's encryption and EC paths).

use super::*;

fn mime_put(
    n: &Node,
    path: &str,
    body: &[u8],
    footer: &str,
    md5_override: Option<&str>,
) -> (Vec<(String, String)>, Response) {
    let boundary = "d0ff1d0e4c7e4a1b9b2c6f9a1e2d3c4b5a697887766554433221100ffeeddccb";
    let md5 = md5_override.map(str::to_string).unwrap_or_else(|| md5_hex(footer.as_bytes()));
    let mut doc = format!("--{boundary}\r\nX-Document: object body\r\n\r\n").into_bytes();
    doc.extend_from_slice(body);
    doc.extend_from_slice(
        format!("\r\n--{boundary}\r\nX-Document: object metadata\r\nContent-MD5: {md5}\r\n\r\n{footer}\r\n--{boundary}--\r\n").as_bytes(),
    );
    let mut c = Client::connect(n.addr());
    c.send(
        format!(
            "PUT {path} HTTP/1.1\r\nX-Timestamp: {}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\
             X-Backend-Obj-Content-Length: {}\r\nX-Backend-Obj-Metadata-Footer: yes\r\nX-Backend-Obj-Multipart-Mime-Boundary: {boundary}\r\n\r\n",
            ts(),
            body.len()
        )
        .as_bytes(),
    );
    let (status, interim) = c.read_head().expect("interim");
    assert_eq!(status, 100);
    c.send(format!("{:x}\r\n", doc.len()).as_bytes());
    c.send(&doc);
    c.send(b"\r\n0\r\n\r\n");
    (interim, c.read_response())
}

#[test]
fn mime_footer_puts_store_footer_metadata() {
    let n = Node::start();
    let footer = format!(
        "{{\"Etag\": \"{}\", \"X-Object-Sysmeta-Crypto-X\": \"secret\", \"X-Object-Meta-Footer\": \"yes\"}}",
        md5_hex(b"body bytes")
    );
    let (interim, r) = mime_put(&n, OBJ, b"body bytes", &footer, None);
    assert!(interim.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-obj-metadata-footer") && v == "yes"), "{interim:?}");
    assert_eq!(r.status, 201, "{}", r.text());
    let g = n.req("GET", OBJ, &[], b"");
    assert_eq!(g.body, b"body bytes");
    assert_eq!(g.header("x-object-sysmeta-crypto-x"), Some("secret"));
    assert_eq!(g.header("x-object-meta-footer"), Some("yes"));
    let (_, r) = mime_put(&n, OBJ, b"x", "{}", Some("0123"));
    assert_eq!((r.status, r.text()), (422, "footer MD5 mismatch".to_string()));
    let (_, r) = mime_put(&n, OBJ, b"x", "{\"Etag\": \"nope\"}", None);
    assert_eq!(r.status, 422, "the footer Etag must match the body");
    let r = n.req(
        "PUT",
        OBJ,
        &[("X-Timestamp", &ts()), ("Content-Type", "a"), ("X-Backend-Obj-Metadata-Footer", "yes")],
        b"x",
    );
    assert_eq!((r.status, r.text()), (400, "no MIME boundary".to_string()));
}
