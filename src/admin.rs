//! The admin processor: `GET /status` (JSON) and `GET /metrics`
//! (Prometheus text format) from the shared scoreboard, plus
//! `GET /healthcheck`.
//!
//! It runs inline on whichever worker accepted the connection: reading the
//! scoreboard is a few thousand atomic loads, never a blocking call. Figures
//! of other workers are as fresh as their last heartbeat (at most a second
//! old). The admin listener is separate from the data ports and defaults to
//! 127.0.0.1.

use crate::clock::monotonic_ms;
use crate::http::CloseReason;
use crate::scoreboard::{
    DbReplicationCell, Histogram, QueueCell, QueueId, ReplicationCell, Scoreboard, Slot, State, DB_SERVICES,
    HIST_BOUNDS_MS,
};
use aerie_api::{Body, Executor, Method, Processor, Request, RequestHead, Response, Status};
use serde_json::json;
use std::collections::BTreeMap;
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
                            "name": q.id().encode(),
                            "depth": q.depth(),
                            "active": q.active(),
                            "threads": q.threads(),
                            "capacity": q.capacity(),
                            "completed": q.completed(),
                            "shed": { "full": q.shed_full(), "age": q.shed_age() },
                            "recent_io_ms": q.recent_io_us() as f64 / 1000.0,
                            "queue_wait": summary(&q.wait_histogram()),
                            "io": summary(&q.io_histogram()),
                        })
                    })
                    .collect();
                json!({
                    "slot": i,
                    "role": s.kind().name(),
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
                    "log_lines_dropped": s.log_dropped(),
                    "unknown_device_requests": s.unknown_device(),
                    "closed": CloseReason::ALL
                        .iter()
                        .map(|r| (r.name().to_string(), json!(s.closed(r.index()))))
                        .collect::<serde_json::Map<_, _>>(),
                    "queues": queues,
                })
            })
            .collect();
        json!({
            "master": {
                "pid": h.master_pid(),
                "phase": h.phase().name(),
                "generation": h.generation(),
                "target_workers": h.target_workers(),
                "reloads": h.reloads(),
                "failed_reloads": h.failed_reloads(),
                "upgrades": h.upgrades(),
                "failed_upgrades": h.failed_upgrades(),
                "worker_crashes": h.worker_crashes(),
                "worker_timeouts": h.worker_timeouts(),
                "started_unix_ms": h.started_unix_ms(),
            },
            "workers": workers,
            "devices": self.devices(),
            "replication": self.replication(),
            "db_replication": self.db_replication(),
        })
    }

    /// Per local device, the object replicator's figures: the current
    /// pass's progress, the last pass's duration, totals since the node
    /// started.
    fn replication(&self) -> Vec<serde_json::Value> {
        self.scoreboard
            .replications()
            .map(|c| {
                json!({
                    "device": c.device(),
                    "partitions": c.partitions(),
                    "partitions_done": c.done(),
                    "pass_started_unix_ms": c.pass_started_unix_ms(),
                    "passes": c.passes(),
                    "last_pass_seconds": c.last_pass_ms() as f64 / 1000.0,
                    "last_pass_end_unix_ms": c.last_pass_end_unix_ms(),
                    "suffixes_hashed": c.suffixes_hashed(),
                    "suffixes_synced": c.suffixes_synced(),
                    "peers_in_sync": c.hashmatch(),
                    "objects_sent": c.objects_sent(),
                    "bytes_sent": c.bytes_sent(),
                    "failures": c.failures(),
                    "handoffs_removed": c.handoffs_removed(),
                    "handoff_objects_removed": c.handoff_objects_removed(),
                    "handoffs_remaining": c.handoffs_remaining(),
                })
            })
            .collect()
    }

    /// Per service and local device, the database replicators' figures:
    /// the current pass's progress, the last pass's duration, totals since
    /// the node started (Swift's `replication_stats` names).
    fn db_replication(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (i, service) in DB_SERVICES.iter().enumerate() {
            let cells: Vec<serde_json::Value> = self
                .scoreboard
                .db_replications(i)
                .map(|c| {
                    json!({
                        "device": c.device(),
                        "databases": c.databases(),
                        "databases_done": c.done(),
                        "pass_started_unix_ms": c.pass_started_unix_ms(),
                        "passes": c.passes(),
                        "last_pass_seconds": c.last_pass_ms() as f64 / 1000.0,
                        "last_pass_end_unix_ms": c.last_pass_end_unix_ms(),
                        "attempted": c.attempted(),
                        "success": c.success(),
                        "failure": c.failure(),
                        "no_change": c.no_change(),
                        "hashmatch": c.hashmatch(),
                        "rsync": c.rsync(),
                        "remote_merge": c.remote_merge(),
                        "diff": c.diff(),
                        "diff_capped": c.diff_capped(),
                        "rows_sent": c.rows_sent(),
                        "remove": c.remove(),
                        "reclaimed_rows": c.reclaimed_rows(),
                        "unopened": c.unopened(),
                    })
                })
                .collect();
            out.insert(service.to_string(), serde_json::Value::Array(cells));
        }
        serde_json::Value::Object(out)
    }

    /// Per device (queue key): the master's slow verdict and the workers'
    /// figures summed.
    fn devices(&self) -> Vec<serde_json::Value> {
        #[derive(Default)]
        struct Sum {
            depth: u64,
            active: u64,
            shed_full: u64,
            shed_age: u64,
            wait: Histogram,
            io: Histogram,
        }
        let mut sums: BTreeMap<QueueId, Sum> = BTreeMap::new();
        for (_, s) in self.live() {
            for q in s.queues() {
                let e = sums.entry(q.id()).or_default();
                e.depth += q.depth();
                e.active += q.active();
                e.shed_full += q.shed_full();
                e.shed_age += q.shed_age();
                e.wait.add(&q.wait_histogram());
                e.io.add(&q.io_histogram());
            }
        }
        let verdicts: BTreeMap<QueueId, (bool, u64, u64)> =
            self.scoreboard.devices().map(|d| (d.id(), (d.slow() != 0, d.recent_io_us(), d.since_unix_ms()))).collect();
        sums.into_iter()
            .map(|(id, s)| {
                let (slow, io_us, since) = verdicts.get(&id).copied().unwrap_or((false, 0, 0));
                json!({
                    "name": id.encode(),
                    "slow": slow,
                    "slow_since_unix_ms": if slow { Some(since) } else { None },
                    "recent_io_ms": io_us as f64 / 1000.0,
                    "depth": s.depth,
                    "active": s.active,
                    "shed": { "full": s.shed_full, "age": s.shed_age },
                    "queue_wait": summary(&s.wait),
                    "io": summary(&s.io),
                })
            })
            .collect()
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
            ("aerie_upgrades_total", "counter", "Binary upgrades completed.", h.upgrades()),
            ("aerie_upgrades_failed_total", "counter", "Binary upgrades refused or rolled back.", h.failed_upgrades()),
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
        family(&mut out, "aerie_master_phase", "gauge", "The master's phase; the value is 1.");
        let _ = writeln!(out, "aerie_master_phase{{phase=\"{}\"}} 1", h.phase().name());
        family(&mut out, "aerie_worker_info", "gauge", "One series per child process; the value is 1.");
        for (_, s) in &slots {
            let _ = writeln!(
                out,
                "aerie_worker_info{{{},role=\"{}\",state=\"{}\"}} 1",
                label(s),
                s.kind().name(),
                s.state().name()
            );
        }
        type Get = fn(&Slot) -> u64;
        let per_worker: [(&str, &str, &str, Get); 7] = [
            ("aerie_worker_requests_total", "counter", "Requests answered.", Slot::requests),
            ("aerie_worker_received_bytes_total", "counter", "Request-body bytes received.", Slot::bytes_in),
            ("aerie_worker_sent_bytes_total", "counter", "Response-body bytes sent.", Slot::bytes_out),
            ("aerie_worker_connections", "gauge", "Open client connections.", Slot::connections),
            ("aerie_worker_accepted_connections_total", "counter", "Connections accepted.", Slot::accepted),
            (
                "aerie_log_lines_dropped_total",
                "counter",
                "Log lines dropped because the log writer could not keep up (a slow log disk).",
                Slot::log_dropped,
            ),
            (
                "aerie_unknown_device_requests_total",
                "counter",
                "Requests for a device this node does not have (answered without a queue).",
                Slot::unknown_device,
            ),
        ];
        for (name, kind, help, get) in per_worker {
            family(&mut out, name, kind, help);
            for (_, s) in &slots {
                let _ = writeln!(out, "{name}{{{}}} {}", label(s), get(s));
            }
        }
        family(&mut out, "aerie_connections_closed_total", "counter", "Client connections closed, by reason.");
        for (_, s) in &slots {
            for r in CloseReason::ALL {
                let _ = writeln!(
                    out,
                    "aerie_connections_closed_total{{{},reason=\"{}\"}} {}",
                    label(s),
                    r.name(),
                    s.closed(r.index())
                );
            }
        }
        family(&mut out, "aerie_worker_heartbeat_age_seconds", "gauge", "Time since the worker's last heartbeat.");
        for (_, s) in &slots {
            let age = now.saturating_sub(s.heartbeat_ms()) as f64 / 1000.0;
            let _ = writeln!(out, "aerie_worker_heartbeat_age_seconds{{{}}} {age}", label(s));
        }
        type QGet = fn(&QueueCell) -> u64;
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
                    let _ = writeln!(out, "{name}{{{}}} {}", queue_labels(&label(s), &q.id()), get(&q));
                }
            }
        }
        family(&mut out, "aerie_queue_shed_total", "counter", "Requests answered 503 without being run, by reason.");
        for (_, s) in &slots {
            for q in s.queues() {
                let l = queue_labels(&label(s), &q.id());
                let _ = writeln!(out, "aerie_queue_shed_total{{{l},reason=\"full\"}} {}", q.shed_full());
                let _ = writeln!(out, "aerie_queue_shed_total{{{l},reason=\"age\"}} {}", q.shed_age());
            }
        }
        for (name, help, get) in [
            (
                "aerie_queue_wait_seconds",
                "Time requests waited in the queue before a thread took them.",
                QueueCell::wait_histogram as fn(&QueueCell) -> Histogram,
            ),
            (
                "aerie_queue_io_seconds",
                "Time requests spent on I/O on the queue's threads (less waits for the client).",
                QueueCell::io_histogram,
            ),
        ] {
            family(&mut out, name, "histogram", help);
            for (_, s) in &slots {
                for q in s.queues() {
                    write_histogram(&mut out, name, &queue_labels(&label(s), &q.id()), &get(&q));
                }
            }
        }
        type RGet = fn(&ReplicationCell) -> u64;
        let per_device: [(&str, &str, &str, RGet); 13] = [
            ("aerie_replication_partitions", "gauge", "Partitions of the device in the current pass.", |c| {
                c.partitions()
            }),
            ("aerie_replication_partitions_done", "gauge", "Partitions of the current pass done.", |c| c.done()),
            ("aerie_replication_passes_total", "counter", "Replication passes the device completed.", |c| c.passes()),
            ("aerie_replication_suffixes_hashed_total", "counter", "Suffix directories hashed.", |c| {
                c.suffixes_hashed()
            }),
            ("aerie_replication_suffixes_synced_total", "counter", "Suffixes sent to a peer.", |c| c.suffixes_synced()),
            ("aerie_replication_peers_in_sync_total", "counter", "Peers found in sync by their hashes.", |c| {
                c.hashmatch()
            }),
            ("aerie_replication_objects_sent_total", "counter", "Object updates sent (PUT, POST, DELETE).", |c| {
                c.objects_sent()
            }),
            ("aerie_replication_sent_bytes_total", "counter", "Object bytes sent.", |c| c.bytes_sent()),
            ("aerie_replication_failures_total", "counter", "Failed exchanges with peers.", |c| c.failures()),
            ("aerie_replication_handoffs_removed_total", "counter", "Handoff partitions removed once reverted.", |c| {
                c.handoffs_removed()
            }),
            (
                "aerie_replication_handoff_objects_removed_total",
                "counter",
                "Handoff objects removed once every primary had them.",
                |c| c.handoff_objects_removed(),
            ),
            ("aerie_replication_handoffs_remaining", "gauge", "Handoff partitions left after the last pass.", |c| {
                c.handoffs_remaining()
            }),
            ("aerie_replication_last_pass_milliseconds", "gauge", "How long the device's last pass took.", |c| {
                c.last_pass_ms()
            }),
        ];
        for (name, kind, help, get) in per_device {
            family(&mut out, name, kind, help);
            for c in self.scoreboard.replications() {
                let _ = writeln!(out, "{name}{{device=\"{}\"}} {}", escape(&c.device()), get(&c));
            }
        }
        type DGet = fn(&DbReplicationCell) -> u64;
        let per_db_device: [(&str, &str, &str, DGet); 16] = [
            ("aerie_db_replication_databases", "gauge", "Databases of the device in the current pass.", |c| {
                c.databases()
            }),
            ("aerie_db_replication_databases_done", "gauge", "Databases of the current pass done.", |c| c.done()),
            (
                "aerie_db_replication_passes_total",
                "counter",
                "Database replication passes the device completed.",
                |c| c.passes(),
            ),
            ("aerie_db_replication_attempted_total", "counter", "Databases replicated.", |c| c.attempted()),
            ("aerie_db_replication_successes_total", "counter", "Peers brought up to date or found so.", |c| {
                c.success()
            }),
            ("aerie_db_replication_failures_total", "counter", "Peers that were not.", |c| c.failure()),
            ("aerie_db_replication_no_change_total", "counter", "Peers in sync by their sync points.", |c| {
                c.no_change()
            }),
            ("aerie_db_replication_hashmatch_total", "counter", "Peers in sync by their hash.", |c| c.hashmatch()),
            ("aerie_db_replication_rsyncs_total", "counter", "Databases pushed whole to a peer that had none.", |c| {
                c.rsync()
            }),
            (
                "aerie_db_replication_remote_merges_total",
                "counter",
                "Databases pushed whole to a peer far behind and merged there.",
                |c| c.remote_merge(),
            ),
            ("aerie_db_replication_diffs_total", "counter", "Peers sent rows.", |c| c.diff()),
            ("aerie_db_replication_diff_caps_total", "counter", "Peers left behind after max_diffs batches.", |c| {
                c.diff_capped()
            }),
            ("aerie_db_replication_rows_sent_total", "counter", "Rows sent to peers.", |c| c.rows_sent()),
            ("aerie_db_replication_removes_total", "counter", "Handoff and reclaimed databases removed.", |c| {
                c.remove()
            }),
            (
                "aerie_db_replication_unopened_total",
                "counter",
                "Databases found in sync by asking the peers alone: unchanged since a pass read them.",
                |c| c.unopened(),
            ),
            ("aerie_db_replication_last_pass_milliseconds", "gauge", "How long the device's last pass took.", |c| {
                c.last_pass_ms()
            }),
        ];
        for (name, kind, help, get) in per_db_device {
            family(&mut out, name, kind, help);
            for (i, service) in DB_SERVICES.iter().enumerate() {
                for c in self.scoreboard.db_replications(i) {
                    let _ =
                        writeln!(out, "{name}{{service=\"{service}\",device=\"{}\"}} {}", escape(&c.device()), get(&c));
                }
            }
        }
        family(&mut out, "aerie_device_slow", "gauge", "1 while the device's recent I/O time is above slow_latency.");
        for d in self.scoreboard.devices() {
            let id = d.id();
            let _ = writeln!(
                out,
                "aerie_device_slow{{processor=\"{}\",queue=\"{}\"}} {}",
                escape(&id.processor),
                escape(&id.key),
                d.slow()
            );
        }
        family(
            &mut out,
            "aerie_device_recent_io_seconds",
            "gauge",
            "Recent I/O time per request of the device's slowest worker.",
        );
        for d in self.scoreboard.devices() {
            let id = d.id();
            let _ = writeln!(
                out,
                "aerie_device_recent_io_seconds{{processor=\"{}\",queue=\"{}\"}} {}",
                escape(&id.processor),
                escape(&id.key),
                d.recent_io_us() as f64 / 1e6
            );
        }
        out
    }
}

/// Count, mean and bucket-bound p50/p99 of a histogram, in milliseconds.
fn summary(h: &Histogram) -> serde_json::Value {
    let n = h.count();
    let quantile = |q: f64| -> Option<u64> {
        if n == 0 {
            return None;
        }
        let want = (q * n as f64).ceil() as u64;
        let mut seen = 0;
        for (i, c) in h.buckets.iter().enumerate() {
            seen += c;
            if seen >= want {
                // The overflow bucket has no bound: report the largest.
                return Some(HIST_BOUNDS_MS.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        None
    };
    json!({
        "count": n,
        "mean_ms": if n > 0 { h.sum_us as f64 / n as f64 / 1000.0 } else { 0.0 },
        "p50_le_ms": quantile(0.5),
        "p99_le_ms": quantile(0.99),
    })
}

/// Prometheus histogram lines for one series.
fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (i, c) in h.buckets.iter().enumerate() {
        cumulative += c;
        let le = HIST_BOUNDS_MS.get(i).map_or("+Inf".to_string(), |ms| format!("{}", *ms as f64 / 1000.0));
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn queue_labels(worker: &str, id: &QueueId) -> String {
    format!("{worker},processor=\"{}\",queue=\"{}\"", escape(&id.processor), escape(&id.key))
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
