//! Background load for lifecycle tests: fresh-connection and keep-alive
//! clients counting what they saw.

use super::Client;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What a load thread saw.
#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    pub ok: u64,
    pub failed: u64,
    /// Keep-alive connections the server closed between requests.
    pub clean_closes: u64,
    /// Connections that broke after part of a response had arrived.
    pub mid_response: u64,
    pub errors: Vec<String>,
}

impl LoadStats {
    fn add(&mut self, o: &LoadStats) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.clean_closes += o.clean_closes;
        self.mid_response += o.mid_response;
        self.errors.extend(o.errors.iter().take(5).cloned());
    }
}

/// A background load: fresh-connection clients and keep-alive clients.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fresh: Vec<std::thread::JoinHandle<LoadStats>>,
    keepalive: Vec<std::thread::JoinHandle<LoadStats>>,
}

/// Outcome of reading one response on a keep-alive connection.
enum ReadOutcome {
    Done(u16),
    /// EOF before any byte of a response.
    Closed,
    /// Broke after part of a response.
    Broken(String),
}

fn read_one(c: &mut Client) -> ReadOutcome {
    let mut line = String::new();
    match c.reader.read_line(&mut line) {
        Ok(0) => return ReadOutcome::Closed,
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && line.is_empty() => return ReadOutcome::Closed,
        Err(e) => return ReadOutcome::Broken(format!("reading the status line: {e}")),
    }
    let Some(status) = line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) else {
        return ReadOutcome::Broken(format!("bad status line {line:?}"));
    };
    let mut len = 0usize;
    loop {
        let mut l = String::new();
        match c.reader.read_line(&mut l) {
            Ok(0) => return ReadOutcome::Broken("EOF in the response head".into()),
            Ok(_) => {}
            Err(e) => return ReadOutcome::Broken(format!("reading headers: {e}")),
        }
        let t = l.trim_end();
        if t.is_empty() {
            break;
        }
        if let Some((n, v)) = t.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    if let Err(e) = c.reader.read_exact(&mut body) {
        return ReadOutcome::Broken(format!("reading the body: {e}"));
    }
    ReadOutcome::Done(status)
}

impl Load {
    pub fn start(addr: SocketAddr, fresh: usize, keepalive: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fresh = (0..fresh)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut st = LoadStats::default();
                    while !stop.load(Ordering::Relaxed) {
                        let r = (|| -> Result<u16, String> {
                            let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
                            s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
                            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                                .map_err(|e| format!("send: {e}"))?;
                            let mut c = Client { reader: BufReader::new(s) };
                            match read_one(&mut c) {
                                ReadOutcome::Done(s) => Ok(s),
                                ReadOutcome::Closed => Err("closed without a response".into()),
                                ReadOutcome::Broken(e) => Err(e),
                            }
                        })();
                        match r {
                            Ok(200) => st.ok += 1,
                            Ok(s) => {
                                st.failed += 1;
                                st.errors.push(format!("status {s}"));
                            }
                            Err(e) => {
                                st.failed += 1;
                                st.errors.push(e);
                            }
                        }
                    }
                    st
                })
            })
            .collect();
        let keepalive = (0..keepalive)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut st = LoadStats::default();
                    let mut conn: Option<Client> = None;
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let c = match conn.as_mut() {
                            Some(c) => c,
                            None => match TcpStream::connect(addr) {
                                Ok(s) => {
                                    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                                    conn.insert(Client { reader: BufReader::new(s) })
                                }
                                Err(e) => {
                                    st.failed += 1;
                                    st.errors.push(format!("connect: {e}"));
                                    continue;
                                }
                            },
                        };
                        n += 1;
                        let req: &[u8] = if n % 2 == 0 {
                            b"POST /echo/ka HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                        } else {
                            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                        };
                        if c.stream().write_all(req).is_err() {
                            // The server closed the connection between requests.
                            st.clean_closes += 1;
                            conn = None;
                            continue;
                        }
                        match read_one(c) {
                            ReadOutcome::Done(200) => st.ok += 1,
                            ReadOutcome::Done(s) => {
                                st.failed += 1;
                                st.errors.push(format!("status {s}"));
                            }
                            ReadOutcome::Closed => {
                                st.clean_closes += 1;
                                conn = None;
                            }
                            ReadOutcome::Broken(e) => {
                                st.mid_response += 1;
                                st.errors.push(e);
                                conn = None;
                            }
                        }
                    }
                    st
                })
            })
            .collect();
        Load { stop, fresh, keepalive }
    }

    /// Stop and collect (fresh, keep-alive).
    pub fn finish(self) -> (LoadStats, LoadStats) {
        self.stop.store(true, Ordering::Relaxed);
        let mut f = LoadStats::default();
        let mut k = LoadStats::default();
        for h in self.fresh {
            f.add(&h.join().expect("load thread"));
        }
        for h in self.keepalive {
            k.add(&h.join().expect("load thread"));
        }
        (f, k)
    }
}
