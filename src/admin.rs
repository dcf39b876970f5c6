//! The admin processor: `GET /status` (JSON) and `GET /metrics`
//! (Prometheus text format) from the shared scoreboard, plus
//! `GET /healthcheck`.
//!
//! It runs inline on whichever worker accepted the connection: reading the
//! scoreboard is a few thousand atomic loads, never a blocking call. Figures
//! of other workers are as fresh as their last heartbeat (at most a second
//! old). The admin listener is separate from the data ports and defaults to
//! 127.0.0.1.

use crate::scoreboard::{monotonic_ms, Scoreboard, Slot, State};
use aerie_api::{Body, Executor, Method, Processor, Request, RequestHead, Response, Status};
use serde_json::json;
use std::fmt::Write;

/// The admin processor.
pub struct Admin {
    scoreboard: Scoreboard,
}

impl Admin {
    /// An admin processor over a scoreboard.
    pub fn new(scoreboard: Scoreboard) -> Admin {
        Admin { scoreboard }
    }

    fn live(&self) -> impl Iterator<Item = (usize, Slot)> + '_ {
        self.scoreboard.slots().filter(|(_, s)| s.state() != State::Free)
    }

    /// The status document.
    pub fn status(&self) -> serde_json::Value {
        let h = self.scoreboard.header();
        let now = monotonic_ms();
        let workers: Vec<serde_json::Value> = self
            .live()
            .map(|(i, s)| {
                let queues: Vec<serde_json::Value> = s
                    .queues()
                    .map(|q| {
                        json!({
                            "name": q.name(),
                            "depth": q.depth(),
                            "active": q.active(),
                            "threads": q.threads(),
                            "capacity": q.capacity(),
                            "completed": q.completed(),
                            "shed": { "full": q.shed_full(), "age": q.shed_age() },
                        })
                    })
                    .collect();
                json!({
                    "slot": i,
                    "role": match s.kind() { 1 => "object-updater", 2 => "container-updater", _ => "worker" },
                    "pid": s.pid(),
                    "index": s.index(),
                    "generation": s.generation(),
                    "state": s.state().name(),
                    "started_unix_ms": s.started_unix_ms(),
                    "heartbeat_age_s": now.saturating_sub(s.heartbeat_ms()) as f64 / 1000.0,
                    "requests": s.requests(),
                    "bytes_in": s.bytes_in(),
                    "bytes_out": s.bytes_out(),
                    "connections": s.connections(),
                    "accepted": s.accepted(),
                    "recycle_requested": s.recycle() != 0,
                    "queues": queues,
                })
            })
            .collect();
        json!({
            "master": {
                "pid": h.master_pid(),
                "generation": h.generation(),
                "target_workers": h.target_workers(),
                "reloads": h.reloads(),
                "failed_reloads": h.failed_reloads(),
                "worker_crashes": h.worker_crashes(),
                "worker_timeouts": h.worker_timeouts(),
                "started_unix_ms": h.started_unix_ms(),
            },
            "workers": workers,
        })
    }

    /// The metrics page.
    pub fn metrics(&self) -> String {
        let h = self.scoreboard.header();
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        for (name, kind, help, v) in [
            ("aerie_generation", "gauge", "Configuration generation being served.", h.generation()),
            ("aerie_workers_target", "gauge", "Workers wanted.", h.target_workers()),
            ("aerie_reloads_total", "counter", "Successful reloads.", h.reloads()),
            ("aerie_reloads_failed_total", "counter", "Reloads refused or undone.", h.failed_reloads()),
            ("aerie_worker_crashes_total", "counter", "Worker deaths not asked for.", h.worker_crashes()),
            ("aerie_worker_timeouts_total", "counter", "Workers killed for a stale heartbeat.", h.worker_timeouts()),
        ] {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }
        let now = monotonic_ms();
        let slots: Vec<(usize, Slot)> = self.live().collect();
        let label =
            |s: &Slot| format!("worker=\"{}\",pid=\"{}\",generation=\"{}\"", s.index(), s.pid(), s.generation());
        family(&mut out, "aerie_worker_info", "gauge", "One series per worker process; the value is 1.");
        for (_, s) in &slots {
            let _ = writeln!(out, "aerie_worker_info{{{},state=\"{}\"}} 1", label(s), s.state().name());
        }
        type Get = fn(&Slot) -> u64;
        let per_worker: [(&str, &str, &str, Get); 5] = [
            ("aerie_worker_requests_total", "counter", "Requests answered.", Slot::requests),
            ("aerie_worker_received_bytes_total", "counter", "Request-body bytes received.", Slot::bytes_in),
            ("aerie_worker_sent_bytes_total", "counter", "Response-body bytes sent.", Slot::bytes_out),
            ("aerie_worker_connections", "gauge", "Open client connections.", Slot::connections),
            ("aerie_worker_accepted_connections_total", "counter", "Connections accepted.", Slot::accepted),
        ];
        for (name, kind, help, get) in per_worker {
            family(&mut out, name, kind, help);
            for (_, s) in &slots {
                let _ = writeln!(out, "{name}{{{}}} {}", label(s), get(s));
            }
        }
        family(&mut out, "aerie_worker_heartbeat_age_seconds", "gauge", "Time since the worker's last heartbeat.");
        for (_, s) in &slots {
            let age = now.saturating_sub(s.heartbeat_ms()) as f64 / 1000.0;
            let _ = writeln!(out, "aerie_worker_heartbeat_age_seconds{{{}}} {age}", label(s));
        }
        type QGet = fn(&crate::scoreboard::QueueCell) -> u64;
        let per_queue: [(&str, &str, &str, QGet); 5] = [
            ("aerie_queue_depth", "gauge", "Requests waiting in the queue.", |q| q.depth()),
            ("aerie_queue_active", "gauge", "Requests running on the queue's threads.", |q| q.active()),
            ("aerie_queue_threads", "gauge", "Threads serving the queue.", |q| q.threads()),
            ("aerie_queue_capacity", "gauge", "Requests the queue holds before shedding.", |q| q.capacity()),
            ("aerie_queue_completed_total", "counter", "Requests the queue's threads finished.", |q| q.completed()),
        ];
        for (name, kind, help, get) in per_queue {
            family(&mut out, name, kind, help);
            for (_, s) in &slots {
                for q in s.queues() {
                    let _ = writeln!(out, "{name}{{{}}} {}", queue_labels(&label(s), &q.name()), get(&q));
                }
            }
        }
        family(&mut out, "aerie_queue_shed_total", "counter", "Requests answered 503 without being run, by reason.");
        for (_, s) in &slots {
            for q in s.queues() {
                let l = queue_labels(&label(s), &q.name());
                let _ = writeln!(out, "aerie_queue_shed_total{{{l},reason=\"full\"}} {}", q.shed_full());
                let _ = writeln!(out, "aerie_queue_shed_total{{{l},reason=\"age\"}} {}", q.shed_age());
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn queue_labels(worker: &str, name: &str) -> String {
    let (processor, key) = name.split_once(':').unwrap_or((name, ""));
    format!("{worker},processor=\"{}\",queue=\"{}\"", escape(processor), escape(key))
}

impl Processor for Admin {
    fn executor(&self, _head: &RequestHead) -> Executor {
        Executor::Inline
    }

    fn call(&self, req: Request) -> Response {
        let (status, ctype, body) = match req.head.raw_path() {
            b"/status" => {
                let mut text = self.status().to_string();
                text.push('\n');
                (Status::OK, "application/json", text)
            }
            b"/metrics" => (Status::OK, "text/plain; version=0.0.4; charset=utf-8", self.metrics()),
            b"/healthcheck" => (Status::OK, "text/plain", "OK".to_string()),
            _ => (Status::NOT_FOUND, "text/plain", "not found: try /status or /metrics\n".to_string()),
        };
        Response::new(status)
            .with_header("Content-Type", ctype.as_bytes())
            .with_body(Body::Bytes(body.into_bytes().into()))
    }

    fn allowed_methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }
}
