//! Nothing lost under concurrency (issue 5): 4 workers, 32 clients and
//! 20,000 row updates to one container and to one account; the final
//! listing and statistics equal exactly what was written.

use crate::container_api::Node;
use crate::object_api::ts;
use crate::util::Client;
use std::collections::BTreeMap;
use std::sync::Arc;

const CLIENTS: usize = 32;
const OPS_PER_CLIENT: usize = 625; // 20,000 in all
/// Each client PUTs rows and DELETEs every `DELETE_EVERY`th one again.
const DELETE_EVERY: usize = 4;

/// One keep-alive client's requests, answered in order.
fn send(c: &mut Client, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    c.send(raw.as_bytes());
    c.read_response().status
}

/// Run `CLIENTS` threads; each gets its index and returns the rows it left
/// live (name -> size).
fn hammer(
    n: &Node,
    op: impl Fn(&mut Client, usize, usize, bool) -> u16 + Send + Sync + 'static,
) -> BTreeMap<String, u64> {
    let op = Arc::new(op);
    let addr = n.addr();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let op = Arc::clone(&op);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut live = BTreeMap::new();
                let (mut i, mut done) = (0, 0);
                while done < OPS_PER_CLIENT {
                    let status = op(&mut c, client, i, false);
                    assert!(status == 201 || status == 204, "client {client} row {i}: {status}");
                    live.insert(format!("r{client:02}-{i:04}"), (client * 1000 + i) as u64);
                    done += 1;
                    if i % DELETE_EVERY == 0 && done < OPS_PER_CLIENT {
                        let status = op(&mut c, client, i, true);
                        assert!(status == 204 || status == 201, "client {client} delete {i}: {status}");
                        live.remove(&format!("r{client:02}-{i:04}"));
                        done += 1;
                    }
                    i += 1;
                }
                live
            })
        })
        .collect();
    let mut all = BTreeMap::new();
    for t in threads {
        all.extend(t.join().expect("client thread"));
    }
    all
}

/// Every entry of a JSON listing, page by page.
fn list_all(n: &Node, path: &str, field: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut marker = String::new();
    loop {
        let r = n.req("GET", &format!("{path}?format=json&marker={marker}"), &[]);
        assert_eq!(r.status, 200);
        let page = r.json();
        let page = page.as_array().expect("array");
        if page.is_empty() {
            return out;
        }
        for e in page {
            let name = e["name"].as_str().expect("name").to_string();
            out.insert(name.clone(), e[field].as_u64().expect("number"));
            marker = name;
        }
    }
}

#[test]
fn twenty_thousand_object_rows_from_32_clients_lose_nothing() {
    let n = Node::service_workers("container", 4);
    const C: &str = "/sda1/0/AUTH_t/busy";
    assert_eq!(n.req("PUT", C, &[("X-Timestamp", &ts())]).status, 201);
    let expected = hammer(&n, |c, client, i, delete| {
        let path = format!("{C}/r{client:02}-{i:04}");
        let t = ts();
        if delete {
            send(c, "DELETE", &path, &[("X-Timestamp", &t)])
        } else {
            let size = (client * 1000 + i).to_string();
            send(c, "PUT", &path, &[("X-Timestamp", &t), ("X-Size", &size), ("X-Content-Type", "t/p"), ("X-Etag", "e")])
        }
    });
    assert_eq!(expected.len(), CLIENTS * OPS_PER_CLIENT * 3 / 5, "the plan: 4 PUTs per DELETE");
    let h = n.req("HEAD", C, &[]);
    assert_eq!(h.header("x-container-object-count"), Some(expected.len().to_string().as_str()));
    assert_eq!(h.header("x-container-bytes-used"), Some(expected.values().sum::<u64>().to_string().as_str()));
    assert_eq!(list_all(&n, C, "bytes"), expected);
}

#[test]
fn twenty_thousand_container_rows_from_32_clients_lose_nothing() {
    let n = Node::service_workers("account", 4);
    const A: &str = "/sda1/0/AUTH_busy";
    assert_eq!(n.req("PUT", A, &[("X-Timestamp", &ts())]).status, 201);
    let expected = hammer(&n, |c, client, i, delete| {
        let path = format!("{A}/r{client:02}-{i:04}");
        let t = ts();
        let (put, del, objects, bytes) = if delete {
            ("0".to_string(), t.clone(), "0".to_string(), "0".to_string())
        } else {
            (t.clone(), "0".to_string(), "1".to_string(), (client * 1000 + i).to_string())
        };
        send(
            c,
            "PUT",
            &path,
            &[
                ("X-Put-Timestamp", &put),
                ("X-Delete-Timestamp", &del),
                ("X-Object-Count", &objects),
                ("X-Bytes-Used", &bytes),
            ],
        )
    });
    let h = n.req("HEAD", A, &[]);
    assert_eq!(h.header("x-account-container-count"), Some(expected.len().to_string().as_str()));
    assert_eq!(h.header("x-account-object-count"), Some(expected.len().to_string().as_str()));
    assert_eq!(h.header("x-account-bytes-used"), Some(expected.values().sum::<u64>().to_string().as_str()));
    assert_eq!(list_all(&n, A, "bytes"), expected);
}

/// 32 clients PUT the same new database at once, `rounds` times (a new
/// name each round): every PUT succeeds, and one valid database is left.
fn concurrent_creators(service: &str, path: impl Fn(usize) -> String, kind: &str) {
    let n = Node::service_workers(service, 4);
    let addr = n.addr();
    for round in 0..8 {
        let p = path(round);
        let barrier = Arc::new(std::sync::Barrier::new(CLIENTS));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (barrier, p) = (Arc::clone(&barrier), p.clone());
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    barrier.wait();
                    send(&mut c, "PUT", &p, &[("X-Timestamp", &ts())])
                })
            })
            .collect();
        let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().expect("client")).collect();
        assert!(statuses.iter().all(|s| *s == 201 || *s == 202), "round {round}: {statuses:?}");
        assert!(statuses.contains(&201), "someone created it: {statuses:?}");
        assert_eq!(n.req("HEAD", &p, &[]).status, 204, "round {round}: readable");
    }
    let dbs: Vec<_> = crate::util::files_under(&n.root)
        .into_iter()
        .filter(|f| f.to_string_lossy().contains(&format!("/{kind}/")))
        .collect();
    assert_eq!(dbs.len(), 8, "one file per database, nothing beside them: {dbs:?}");
    let leftovers: Vec<_> =
        crate::util::files_under(&n.root.join("sda1/tmp")).into_iter().filter(|f| f.exists()).collect();
    assert!(leftovers.is_empty(), "temporary databases left: {leftovers:?}");
    let info_kind = if kind == "accounts" { "account" } else { "container" };
    for db in dbs {
        crate::util::swift_db_info(info_kind, &db);
    }
}

#[test]
fn thirty_two_clients_creating_one_account_all_succeed_and_leave_one_database() {
    concurrent_creators("account", |round| format!("/sda1/0/AUTH_new{round}"), "accounts");
}

#[test]
fn thirty_two_clients_creating_one_container_all_succeed_and_leave_one_database() {
    concurrent_creators("container", |round| format!("/sda1/0/AUTH_t/new{round}"), "containers");
}
