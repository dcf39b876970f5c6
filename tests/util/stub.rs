//! Stand-ins for other storage servers: answer each connection's request
//! and hand its head lines to the test.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;

/// A bodiless 201 answer for [`stub_server`].
pub const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
/// A bodiless 404 answer for [`stub_server`].
pub const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/// A stand-in for another storage server (a container or account replica):
/// answers each connection's request with `answer(head lines)` and sends
/// the head lines (trimmed, request line first) to the receiver.
pub fn stub_server(
    answer: impl Fn(&[String]) -> &'static [u8] + Send + 'static,
) -> (SocketAddr, std::sync::mpsc::Receiver<Vec<String>>) {
    let stub = std::net::TcpListener::bind("127.0.0.1:0").expect("stub");
    let addr = stub.local_addr().expect("addr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in stub.incoming().flatten() {
            let Ok(read) = conn.try_clone() else { continue };
            let mut r = BufReader::new(read);
            let mut lines = Vec::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
                lines.push(l.trim_end().to_string());
            }
            let _ = (&conn).write_all(answer(&lines));
            if tx.send(lines).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}
