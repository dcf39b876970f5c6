//! Every default of the configuration, one named constant each.
//!
//! `man/aerie.toml.5` repeats each of these; a test checks that the man page
//! and `etc/aerie.toml` agree with them.

/// `server.workers`: worker processes forked by the master.
pub const WORKERS: usize = 2;
/// `server.graceful_timeout` (seconds): how long a stopping worker may take to
/// finish its in-flight requests before it is killed.
pub const GRACEFUL_TIMEOUT: f64 = 30.0;
/// `server.bind_timeout` (seconds): at start, how long the master keeps
/// trying to bind an address another process still holds (a server that is
/// stopping, as Swift's `bind_timeout`).
pub const BIND_TIMEOUT: f64 = 30.0;
/// `server.worker_timeout` (seconds): a worker whose heartbeat is older than
/// this is considered hung.
pub const WORKER_TIMEOUT: f64 = 60.0;
/// `server.max_connections`: open client connections per worker; past it the
/// worker stops accepting until one closes.
pub const MAX_CONNECTIONS: usize = 4096;
/// `server.keepalive_timeout` (seconds): how long an idle keep-alive
/// connection is kept open waiting for the next request.
pub const KEEPALIVE_TIMEOUT: f64 = 60.0;
/// `server.header_timeout` (seconds): time allowed to receive a complete
/// request head once its first byte arrived.
pub const HEADER_TIMEOUT: f64 = 10.0;
/// `server.body_timeout` (seconds): longest wait for more request-body bytes
/// (Swift's `client_timeout`).
pub const BODY_TIMEOUT: f64 = 60.0;
/// `server.write_timeout` (seconds): longest wait for a client to accept more
/// response bytes.
pub const WRITE_TIMEOUT: f64 = 60.0;
/// `server.max_request_line`: bytes in the request line; longer gets 414.
pub const MAX_REQUEST_LINE: usize = 8192;
/// `server.max_header_bytes`: bytes in the whole request head; more gets 431.
pub const MAX_HEADER_BYTES: usize = 65536;
/// `server.max_headers`: header fields in a request; more gets 431.
pub const MAX_HEADERS: usize = 256;

/// `server.accept_balance`: a worker holding clearly more than its share of
/// the connections leaves new ones to the other workers for a few
/// milliseconds, so connections spread evenly over the workers.
pub const ACCEPT_BALANCE: bool = true;
/// `server.max_requests`: a worker asks to be replaced after answering this
/// many requests (0: never). Replacements happen one worker at a time.
pub const MAX_REQUESTS: u64 = 0;
/// `server.max_requests_jitter`: a random 0..=jitter added per worker, so
/// workers started together do not all reach the limit together.
pub const MAX_REQUESTS_JITTER: u64 = 0;
/// `server.pid_file`: where the master writes its pid ("" for none).
pub const PID_FILE: &str = "";
/// `server.user` / `server.group`: drop workers to this user and group after
/// binding ("" keeps the master's).
pub const USER: &str = "";
/// See [`USER`].
pub const GROUP: &str = "";

/// `admin.address`: the status and metrics listener ("" turns it off).
pub const ADMIN_ADDRESS: &str = "127.0.0.1:8079";

/// `listen.backlog`: the kernel's queue of connections not yet accepted.
pub const BACKLOG: u32 = 1024;
/// `listen.max_body_size`: request-body bytes per request; more gets 413.
/// Swift's `max_file_size` (5 GiB + 2 bytes).
pub const MAX_BODY_SIZE: u64 = 5_368_709_122;
/// `listen.length_required`: methods that must say how long their body is
/// (Content-Length or chunked); without, 411. A Swift node sets `[]`: the
/// proxy sends container PUTs and object POSTs with no length at all.
pub const LENGTH_REQUIRED: &[&str] = &["POST", "PUT"];

/// `processors.<name>.threads_per_device`: pool threads per queue key (for the
/// storage services, per device).
pub const THREADS_PER_DEVICE: usize = 4;
/// `processors.<name>.queue_per_device`: requests that may wait per queue key
/// beyond those running; a full queue answers 503 with Retry-After.
pub const QUEUE_PER_DEVICE: usize = 64;
/// `processors.<name>.max_queue_wait` (seconds, 0 for never): a request
/// that waited this long in its queue is answered 503 with Retry-After
/// without touching the disk — its client (a Swift proxy, whose
/// node_timeout is 10 s) has likely given up on it and asked another
/// replica.
pub const MAX_QUEUE_WAIT: f64 = 5.0;
/// `processors.<name>.slow_latency` (seconds): a queue key (a device)
/// whose requests recently spent longer than this on I/O each (time on the
/// pool thread, less the time waiting for the client's body or for the
/// client to take the response) is flagged slow in /status and the log.
pub const SLOW_LATENCY: f64 = 0.5;

/// `storage.devices`: the devices root; each device is a directory in it.
pub const STORAGE_DEVICES: &str = "/srv/node";
/// `storage.mount_check`: a device must be a mount point (else 507).
pub const STORAGE_MOUNT_CHECK: bool = true;
/// `storage.swift_conf`: Swift's cluster file (hash prefix and suffix,
/// storage policies, constraints), read when a storage service is used.
pub const STORAGE_SWIFT_CONF: &str = "/etc/swift/swift.conf";
/// `storage.fallocate_reserve`: free space kept on every device, in bytes
/// or as a percentage; writes that would cross it get 507.
pub const STORAGE_FALLOCATE_RESERVE: &str = "1%";

/// `storage.object_updater_interval` (seconds): how often the object
/// updater replays saved container updates (it runs whenever the object
/// service is in a pipeline).
pub const STORAGE_OBJECT_UPDATER_INTERVAL: f64 = 5.0;
/// `storage.container_updater_interval` (seconds): how often the container
/// updater sends changed container statistics to the accounts (it runs
/// whenever the container service is in a pipeline).
pub const STORAGE_CONTAINER_UPDATER_INTERVAL: f64 = 5.0;
/// `storage.container_updater_suppression` (seconds): after an update to
/// an account failed (no majority of its replicas accepted it), how long
/// the container updater leaves that account's containers alone (Swift's
/// `account_suppression_time`).
pub const STORAGE_CONTAINER_UPDATER_SUPPRESSION: f64 = 60.0;
/// `storage.reclaim_age` (seconds): tombstones older than this are removed
/// (and deleted database rows purged). Every node of a cluster must agree
/// on it — suffix hashes change when a tombstone goes (Swift's
/// `reclaim_age`, one week).
pub const STORAGE_RECLAIM_AGE: f64 = 604_800.0;
/// `storage.allowed_sync_hosts`: the hosts an `X-Container-Sync-To` URL may
/// name (without a realm; Swift's container-server `allowed_sync_hosts`).
pub const STORAGE_ALLOWED_SYNC_HOSTS: &[&str] = &["127.0.0.1"];
/// `storage.recon_cache_path`: the directory of the recon documents
/// (`object.recon`, `container.recon`, `account.recon`) the background
/// roles write after each pass and `/recon/*` answers from — Swift's
/// daemons on the node write theirs there too (Swift's `recon_cache_path`).
pub const STORAGE_RECON_CACHE_PATH: &str = aerie_storage::recon::DEFAULT_PATH;

/// `replication.object_replicator`: whether the master runs aerie's object
/// replicator (whenever the object service is in a pipeline). Turn it off
/// where Swift's own object-replicator works on the same devices.
pub const REPLICATION_OBJECT_REPLICATOR: bool = true;
/// `replication.interval` (seconds): the pause between the object
/// replicator's passes (Swift's `interval`).
pub const REPLICATION_INTERVAL: f64 = 30.0;
/// `replication.concurrency`: partitions replicated at once on the node,
/// over all devices.
pub const REPLICATION_CONCURRENCY: usize = 8;
/// `replication.concurrency_per_device`: partitions replicated at once per
/// local device; each device goes at its own pace.
pub const REPLICATION_CONCURRENCY_PER_DEVICE: usize = 2;
/// `replication.handoffs_first`: push partitions this node holds only as a
/// handoff before replicating its primaries (after a rebalance).
pub const REPLICATION_HANDOFFS_FIRST: bool = false;
/// `replication.max_bytes_per_second`: object bytes a device's replication
/// may read per second (0: no limit), so client requests keep their share.
pub const REPLICATION_MAX_BYTES_PER_SECOND: u64 = 0;
/// `replication.max_objects_per_second`: objects a device's replication may
/// send per second (0: no limit): a bound on the IOPS it takes.
pub const REPLICATION_MAX_OBJECTS_PER_SECOND: u64 = 0;
/// `replication.conn_timeout` (seconds): connect timeout towards peers.
pub const REPLICATION_CONN_TIMEOUT: f64 = 0.5;
/// `replication.node_timeout` (seconds): how long a peer may take to
/// accept what the replicator sends (Swift's `node_timeout`).
pub const REPLICATION_NODE_TIMEOUT: f64 = 10.0;
/// `replication.http_timeout` (seconds): how long a peer may take to answer
/// (Swift's `http_timeout`).
pub const REPLICATION_HTTP_TIMEOUT: f64 = 60.0;
/// `replication.replication_concurrency_per_device`: SSYNC sessions from
/// other nodes at once per device (0: no limit); Swift's object-server
/// setting.
pub const REPLICATION_RECEIVE_PER_DEVICE: usize = 1;
/// `replication.replication_lock_timeout` (seconds): how long an incoming
/// SSYNC waits for its partition and device locks.
pub const REPLICATION_LOCK_TIMEOUT: f64 = 15.0;
/// `replication.replication_failure_threshold`: failed updates after which
/// an incoming SSYNC is abandoned, when they also outnumber the successes
/// by `replication_failure_ratio`.
pub const REPLICATION_FAILURE_THRESHOLD: u64 = 100;
/// `replication.replication_failure_ratio`.
pub const REPLICATION_FAILURE_RATIO: f64 = 1.0;
/// `replication.nice_priority` (Swift's daemons' `nice_priority`): the CPU
/// priority of the object replicator and of the threads that answer other
/// nodes' REPLICATE and SSYNC, so that on busy cores client requests go
/// first (0: no change).
pub const REPLICATION_NICE_PRIORITY: i32 = 10;

/// `replication.db_replicator`: whether the master runs aerie's container
/// and account replicators (each where its service is in a pipeline). Turn
/// it off where Swift's own container- and account-replicators work on the
/// same devices.
pub const REPLICATION_DB_REPLICATOR: bool = true;
/// `replication.per_diff`: rows per `merge_items` call (Swift's
/// `per_diff`); also the lag past which a replica under half the rows is
/// sent the whole database by rsync.
pub const REPLICATION_PER_DIFF: i64 = 1000;
/// `replication.max_diffs`: `merge_items` calls per database and pass
/// (Swift's `max_diffs`); a replica further behind catches up next pass.
pub const REPLICATION_MAX_DIFFS: u64 = 100;
/// `replication.databases_per_second`: databases the container (and the
/// account) replicator starts per second on the node (Swift's
/// `databases_per_second`; 0: no limit).
pub const REPLICATION_DATABASES_PER_SECOND: f64 = 50.0;
/// `replication.container_rsync_module`: where a container database is
/// pushed whole (Swift's container-replicator `rsync_module`), with the
/// peer's `{replication_ip}`, `{replication_port}`, `{ip}`, `{port}`,
/// `{region}`, `{zone}`, `{device}`, `{meta}` filled in.
pub const REPLICATION_CONTAINER_RSYNC_MODULE: &str = "{replication_ip}::container";
/// `replication.account_rsync_module`: the same for account databases.
pub const REPLICATION_ACCOUNT_RSYNC_MODULE: &str = "{replication_ip}::account";
/// `replication.rsync_compress`: compress database rsyncs to peers in
/// another region (Swift's `rsync_compress`).
pub const REPLICATION_RSYNC_COMPRESS: bool = false;

/// `processors.<name>.container_update_timeout` (seconds; the object
/// service): how long an object write waits for its container updates
/// before answering.
pub const CONTAINER_UPDATE_TIMEOUT: f64 = 1.0;
/// `processors.<name>.conn_timeout` (seconds; the object and container
/// services): connect timeout towards other storage servers (container
/// servers for object writes and the object updater, account servers for
/// container writes and the container updater).
pub const CONN_TIMEOUT: f64 = 0.5;
/// `processors.<name>.node_timeout` (seconds): response timeout towards
/// other storage servers.
pub const NODE_TIMEOUT: f64 = 3.0;
/// `processors.<name>.etag_validate_pct` (the object service): the share,
/// in percent, of whole-object GETs whose bytes are hashed as they are read
/// and checked against the stored ETag — a mismatch quarantines the object
/// (Swift's `etag_validate_pct`, whose default is 100). Hashing costs about
/// a CPU-millisecond per MiB.
pub const ETAG_VALIDATE_PCT: f64 = 100.0;

/// `log.level`: the error-log level (error, warn, info, debug, trace);
/// `RUST_LOG` overrides it.
pub const LOG_LEVEL: &str = "info";
/// `log.access`: write one access-log line per request.
pub const LOG_ACCESS: bool = true;
/// `log.error_log`: error-log file ("" for standard error).
pub const LOG_ERROR_LOG: &str = "";
/// `log.access_log`: access-log file ("" for wherever the error log goes).
pub const LOG_ACCESS_LOG: &str = "";

/// The configuration used when no `-c FILE` is given: `hello` at `/`, `echo`
/// under `/echo`, on 127.0.0.1:8080 with 2 workers.
pub const EMBEDDED_CONFIG: &str = r#"# aerie's embedded default configuration (used when no -c FILE is given).
[server]
workers = 2

[[listen]]
address = "127.0.0.1:8080"
pipeline = ["healthcheck", "hello"]

[[listen.route]]
prefix = "/echo"
pipeline = ["echo"]
"#;
