//! Dispatch: from a complete request head to a running request, in one
//! place.
//!
//! 1. **Route**: per listener, a default pipeline and prefix routes
//!    (longest prefix first, matched on the raw path at a `/` boundary:
//!    `/echo` matches `/echo` and `/echo/x`, not `/echoes`).
//! 2. **Method**: a processor that lists its methods gets `405` with
//!    `Allow` for any other, without being called.
//! 3. **Executor**: an inline processor is called here, on the loop thread
//!    (it must not block; a request body is refused to it). A pooled one is
//!    queued on its `(processor, key)` pool; a device key names a device
//!    the node must have (the master's table in the scoreboard), else the
//!    processor's `unknown_device` answer is given here without a queue or
//!    a thread being made.
//! 4. **Overload**: a full queue, or no queue to be had, is `503` with
//!    `Retry-After` at once ([`Outgoing::overloaded`]).
//!
//! Every answer made here is an [`Outgoing`], the one shape a response has
//! on its way to the wire.

use super::bridge::{body_pipe, BodyTx, ConnId, InlineBody, Notifier, Outgoing};
use super::pool::{Job, Pools, Refused};
use crate::config::{Config, ListenConfig};
use crate::pipeline::{build_pipeline, Pipeline};
use crate::scoreboard::{Scoreboard, Slot};
use aerie_api::{BuildError, Executor, Method, Request, RequestBody, RequestHead, Status};
use std::sync::Arc;
use std::time::Instant;

/// A listener's routing table and per-listener limits.
pub struct ListenerInfo {
    default: Pipeline,
    routes: Vec<(Vec<u8>, Pipeline)>,
    /// Largest accepted body.
    pub max_body_size: u64,
    /// Methods that need a length.
    pub length_required: Vec<Method>,
    /// Whether responses name aerie in `Server`: not where a storage
    /// service answers (Swift's servers send none, and the proxy passes a
    /// backend's on to its clients).
    pub server_header: bool,
}

impl ListenerInfo {
    /// Build the pipelines of one listener (in the worker, after fork).
    pub fn build(config: &Config, l: &ListenConfig) -> Result<ListenerInfo, BuildError> {
        let default = build_pipeline(config, &l.pipeline)?;
        let mut routes = Vec::with_capacity(l.routes.len());
        for r in &l.routes {
            routes.push((r.prefix.as_bytes().to_vec(), build_pipeline(config, &r.pipeline)?));
        }
        let server_header = !crate::catalog::lookup(default.terminal).is_some_and(|e| e.storage);
        Ok(ListenerInfo {
            default,
            routes,
            max_body_size: l.max_body_size,
            length_required: l.length_required.iter().map(|m| Method::from_token(m)).collect(),
            server_header,
        })
    }

    /// The admin listener: status and metrics, nothing else.
    pub fn admin(scoreboard: Scoreboard) -> ListenerInfo {
        ListenerInfo {
            default: Pipeline { processor: Arc::new(crate::admin::Admin::new(scoreboard)), terminal: "admin" },
            routes: Vec::new(),
            max_body_size: 0,
            length_required: Vec::new(),
            server_header: true,
        }
    }

    /// The pipeline for a raw path.
    pub fn route(&self, path: &[u8]) -> &Pipeline {
        self.routes.iter().find(|(prefix, _)| matches_prefix(prefix, path)).map(|(_, p)| p).unwrap_or(&self.default)
    }
}

fn matches_prefix(prefix: &[u8], path: &[u8]) -> bool {
    if prefix == b"/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
        None => false,
    }
}

/// What dispatch needs from the worker.
pub struct Dispatcher<'a> {
    /// The worker's pools.
    pub pools: &'a mut Pools,
    /// The completion path (for body pipes).
    pub notifier: &'a Notifier,
    /// The shared scoreboard (the devices this node has).
    pub scoreboard: Scoreboard,
    /// This worker's slot (counters).
    pub slot: Slot,
}

/// How a request was started.
pub enum Dispatched {
    /// Answered here (405, inline, unknown device, overload).
    Answered(Outgoing),
    /// Queued on a pool; the body pipe's loop end if the request has a
    /// body.
    Queued(Option<BodyTx>),
}

/// Start a request (see the module docs). `has_body` says whether the
/// request has a body to feed.
pub fn dispatch(
    listener: &ListenerInfo,
    head: RequestHead,
    has_body: bool,
    conn: ConnId,
    now: Instant,
    d: &mut Dispatcher<'_>,
) -> Dispatched {
    let pipeline = listener.route(head.raw_path());
    if let Some(allowed) = pipeline.processor.allowed_methods() {
        if !allowed.contains(head.method()) {
            let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            return Dispatched::Answered(Outgoing::text(
                Status::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
                vec![aerie_api::Header::new("Allow", allow.into_bytes())],
            ));
        }
    }
    match pipeline.processor.executor(&head) {
        Executor::Inline => {
            let body = if has_body { RequestBody::from_source(Box::new(InlineBody)) } else { RequestBody::empty() };
            // A panic here unwinds out of the loop and ends the worker; the
            // master starts a new one. Inline code must not panic.
            Dispatched::Answered(Outgoing::inline(pipeline.processor.call(Request { head, body })))
        }
        Executor::Pooled(key) => {
            if key.is_device()
                && !d.pools.has_queue(pipeline.terminal, &key)
                && !d.scoreboard.has_device(key.device_name())
            {
                d.slot.add_unknown_device(1);
                log::debug!("{}: no device {key} on this node", head.peer());
                return Dispatched::Answered(Outgoing::inline(
                    pipeline.processor.unknown_device(&head, key.device_name()),
                ));
            }
            let (tx, body) = if has_body {
                let (tx, source) = body_pipe(d.notifier.clone(), conn);
                (Some(tx), RequestBody::from_source(Box::new(source)))
            } else {
                (None, RequestBody::empty())
            };
            let peer = head.peer();
            let job =
                Job { processor: pipeline.processor.clone(), request: Request { head, body }, conn, enqueued: now };
            match d.pools.submit(pipeline.terminal, key.clone(), job) {
                Ok(()) => Dispatched::Queued(tx),
                Err(Refused::Full) => {
                    log::debug!("{peer}: queue {}:{key} is full: 503", pipeline.terminal);
                    Dispatched::Answered(Outgoing::overloaded("queue full", std::time::Duration::ZERO))
                }
                Err(Refused::NoQueue(why)) => {
                    log::warn!("no queue for {}:{key}: {why}", pipeline.terminal);
                    Dispatched::Answered(Outgoing::overloaded("no queue available", std::time::Duration::ZERO))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches_prefix;

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        assert!(matches_prefix(b"/echo", b"/echo"));
        assert!(matches_prefix(b"/echo", b"/echo/a"));
        assert!(!matches_prefix(b"/echo", b"/echoes"));
        assert!(!matches_prefix(b"/echo", b"/"));
        assert!(matches_prefix(b"/", b"/anything"));
    }
}
