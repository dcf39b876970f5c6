//! Which pipeline serves a request: per listener, a default pipeline and
//! prefix routes (longest prefix first, matched on the raw path at a `/`
//! boundary: `/echo` matches `/echo` and `/echo/x`, not `/echoes`).

use crate::config::{Config, ListenConfig};
use crate::registry::{build_pipeline, Pipeline};
use crate::scoreboard::Scoreboard;
use aerie_api::{BuildError, Method};
use std::sync::Arc;

/// A listener's routing table and per-listener limits.
pub struct ListenerInfo {
    default: Pipeline,
    routes: Vec<(Vec<u8>, Pipeline)>,
    /// Largest accepted body.
    pub max_body_size: u64,
    /// Methods that need a length.
    pub length_required: Vec<Method>,
}

impl ListenerInfo {
    /// Build the pipelines of one listener (in the worker, after fork).
    pub fn build(config: &Config, l: &ListenConfig) -> Result<ListenerInfo, BuildError> {
        let default = build_pipeline(config, &l.pipeline)?;
        let mut routes = Vec::with_capacity(l.routes.len());
        for r in &l.routes {
            routes.push((r.prefix.as_bytes().to_vec(), build_pipeline(config, &r.pipeline)?));
        }
        Ok(ListenerInfo {
            default,
            routes,
            max_body_size: l.max_body_size,
            length_required: l.length_required.iter().map(|m| Method::from_token(m)).collect(),
        })
    }

    /// The admin listener: status and metrics, nothing else.
    pub fn admin(scoreboard: Scoreboard) -> ListenerInfo {
        ListenerInfo {
            default: Pipeline { processor: Arc::new(crate::admin::Admin::new(scoreboard)), terminal: "admin" },
            routes: Vec::new(),
            max_body_size: 0,
            length_required: Vec::new(),
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
