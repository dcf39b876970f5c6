//! Building pipelines: a constructor per compiled-in name (the names and
//! what they are live in `catalog`). This and `catalog` are the only places
//! the server names an app crate. A worker builds its listeners' pipelines
//! here, after fork.

use crate::config::Config;
use aerie_api::{BuildError, SharedProcessor};
use std::sync::Arc;

enum Build {
    Processor(fn(&Config) -> Result<SharedProcessor, BuildError>),
    Middleware(fn(&Config, SharedProcessor) -> Result<SharedProcessor, BuildError>),
}

fn swift(config: &Config) -> Result<aerie_storage::swift_conf::SwiftConf, BuildError> {
    config.storage.swift.clone().ok_or_else(|| BuildError("swift.conf was not loaded".into()))
}

fn build_object(config: &Config) -> Result<SharedProcessor, BuildError> {
    let remote = config.pools.get("object").map(|p| p.settings).unwrap_or_default();
    let server = aerie_object::ObjectServer::new(aerie_object::ObjectConfig {
        devices: config.storage.devices.clone(),
        swift: swift(config)?,
        reserve: config.storage.reserve,
        container_update_timeout: remote.update_wait(),
        conn_timeout: remote.conn(),
        node_timeout: remote.node(),
        etag_validate_pct: remote.etag_validate_pct(),
        reclaim_age: config.storage.reclaim_age.as_secs_f64(),
        ssync: aerie_object::ssync::ReceiverSettings {
            lock_timeout: config.replication.lock_timeout,
            concurrency_per_device: config.replication.receive_per_device,
            failure_threshold: config.replication.failure_threshold,
            failure_ratio: config.replication.failure_ratio,
        },
    })?;
    Ok(Arc::new(server))
}

fn build_container(config: &Config) -> Result<SharedProcessor, BuildError> {
    let remote = config.pools.get("container").map(|p| p.settings).unwrap_or_default();
    Ok(Arc::new(aerie_container::ContainerServer::new(aerie_container::ContainerConfig {
        devices: config.storage.devices.clone(),
        swift: swift(config)?,
        reserve: config.storage.reserve,
        conn_timeout: remote.conn(),
        node_timeout: remote.node(),
        allowed_sync_hosts: config.storage.allowed_sync_hosts.clone(),
        sync_realms: config
            .storage
            .swift_conf_path
            .parent()
            .map(|d| d.join("container-sync-realms.conf"))
            .unwrap_or_default(),
    })))
}

fn build_account(config: &Config) -> Result<SharedProcessor, BuildError> {
    Ok(Arc::new(aerie_account::AccountServer::new(aerie_account::AccountConfig {
        devices: config.storage.devices.clone(),
        swift: swift(config)?,
        reserve: config.storage.reserve,
    })))
}

fn build_recon(config: &Config, inner: SharedProcessor) -> Result<SharedProcessor, BuildError> {
    let st = &config.storage;
    let swift_dir = st.swift_conf_path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let policies = st.swift.as_ref().map_or_else(|| vec![0], |s| s.policies.iter().map(|p| p.index).collect());
    Ok(Arc::new(aerie_storage::recon::Recon::new(
        inner,
        aerie_storage::recon::ReconConfig {
            devices: st.devices.root.clone(),
            swift_dir,
            swift_conf: st.swift_conf_path.clone(),
            cache_path: st.recon_cache_path.clone(),
            policies,
            version: format!("aerie-{}", env!("CARGO_PKG_VERSION")),
        },
    )))
}

/// The constructor of a catalog name.
fn builder(name: &str) -> Option<Build> {
    Some(match name {
        "account" => Build::Processor(build_account),
        "container" => Build::Processor(build_container),
        "object" => Build::Processor(build_object),
        "hello" => Build::Processor(|_| Ok(Arc::new(aerie_builtin::Hello))),
        "echo" => Build::Processor(|_| Ok(Arc::new(aerie_builtin::Echo::default()))),
        "fault" => Build::Processor(|_| Ok(Arc::new(aerie_builtin::Fault::new()))),
        "healthcheck" => Build::Middleware(|_, inner| Ok(Arc::new(aerie_builtin::Healthcheck::new(inner)))),
        "recon" => Build::Middleware(build_recon),
        "no-replication" => {
            Build::Middleware(|_, inner| Ok(Arc::new(aerie_storage::no_replication::NoReplication::new(inner))))
        }
        _ => return None,
    })
}

/// A built pipeline: the outermost processor, and the name of the processor
/// at its end (whose `[processors.<name>]` pool runs its pooled requests).
#[derive(Clone)]
pub struct Pipeline {
    /// The outermost processor (middleware wrapping the rest).
    pub processor: SharedProcessor,
    /// The terminal processor's name.
    pub terminal: &'static str,
}

/// Run a constructor, turning an error or a panic into a `BuildError` that
/// names the processor (a worker that cannot build its pipelines exits with
/// the boot-failure code instead of crashing in a restart loop).
fn guarded<F>(name: &str, f: F) -> Result<SharedProcessor, BuildError>
where
    F: FnOnce() -> Result<SharedProcessor, BuildError>,
{
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(BuildError(format!("{name}: {e}"))),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(BuildError(format!("{name} panicked while starting: {msg}")))
        }
    }
}

/// Build a pipeline from validated names (outermost first). Runs in the
/// worker, after fork.
pub fn build_pipeline(config: &Config, names: &[String]) -> Result<Pipeline, BuildError> {
    let (last, middleware) = names.split_last().ok_or_else(|| BuildError("empty pipeline".into()))?;
    let entry = crate::catalog::lookup(last).ok_or_else(|| BuildError(format!("unknown processor `{last}`")))?;
    let Some(Build::Processor(make)) = builder(last) else {
        return Err(BuildError(format!("`{last}` is middleware, not a processor")));
    };
    let mut processor = guarded(last, || make(config))?;
    for name in middleware.iter().rev() {
        let Some(Build::Middleware(wrap)) = builder(name) else {
            return Err(BuildError(format!("`{name}` is not middleware")));
        };
        let inner = processor.clone();
        processor = guarded(name, move || wrap(config, inner))?;
    }
    Ok(Pipeline { processor, terminal: entry.name })
}

#[cfg(test)]
mod tests {
    use super::builder;

    #[test]
    fn every_catalog_name_has_a_constructor_of_its_kind() {
        for e in crate::catalog::all() {
            let built = builder(e.name);
            let matches = match e.kind {
                crate::config::ProcessorKind::Middleware => matches!(built, Some(super::Build::Middleware(_))),
                _ => matches!(built, Some(super::Build::Processor(_))),
            };
            assert!(matches, "{} has no constructor of its kind", e.name);
        }
    }
}
