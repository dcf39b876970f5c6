//! Unit tests of parsing and validation, against a catalog of their own
//! (config names no processor; the server's catalog is tested in
//! `tests/docs.rs` against the man page and the examples).

use super::*;

/// The shapes of the processors the server compiles in.
pub(super) struct TestCatalog;

impl Catalog for TestCatalog {
    fn kind(&self, name: &str) -> Option<ProcessorKind> {
        match name {
            "hello" => Some(ProcessorKind::Inline),
            "echo" | "object" | "container" | "account" => Some(ProcessorKind::Pooled),
            "healthcheck" => Some(ProcessorKind::Middleware),
            _ => None,
        }
    }

    fn names(&self) -> Vec<&'static str> {
        vec!["account", "container", "echo", "healthcheck", "hello", "object"]
    }

    fn settings(&self, name: &str) -> &'static [Setting] {
        match name {
            "object" => &Setting::ALL,
            "container" => &[Setting::ConnTimeout, Setting::NodeTimeout],
            _ => &[],
        }
    }

    fn is_storage(&self, name: &str) -> bool {
        matches!(name, "object" | "container" | "account")
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    RawConfig::parse(text, &Source::Embedded)?.validate(&TestCatalog)
}

#[test]
fn embedded_config_serves_hello_and_echo_with_two_workers() {
    let c = Config::load(&Source::Embedded, &Overrides::default(), &TestCatalog).expect("embedded config is valid");
    assert_eq!(c.server.workers, 2);
    assert_eq!(c.listen[0].address, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(c.listen[0].pipeline, ["healthcheck", "hello"]);
    assert_eq!(c.listen[0].routes[0].prefix, "/echo");
}

#[test]
fn unknown_keys_are_errors_that_name_the_key() {
    let e = parse("[server]\nworkerz = 3\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']").expect_err("invalid");
    assert!(e.to_string().contains("workerz"), "{e}");
}

#[test]
fn bad_values_name_the_key_path() {
    let e = parse("[[listen]]\naddress='nope'\npipeline=['hello']").expect_err("invalid");
    assert!(e.to_string().starts_with("listen[0].address:"), "{e}");
    let e = parse("[server]\ngraceful_timeout = -1\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']")
        .expect_err("invalid");
    assert!(e.to_string().starts_with("server.graceful_timeout:"), "{e}");
    let e = parse("[server]\nbind_timeout = -1\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']")
        .expect_err("invalid");
    assert!(e.to_string().starts_with("server.bind_timeout: -1 is not zero or a positive"), "{e}");
    let c = parse("[server]\nbind_timeout = 0\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']").expect("valid");
    assert_eq!(c.server.bind_timeout, Duration::ZERO);
    let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello', 'healthcheck']").expect_err("invalid");
    assert!(e.to_string().starts_with("listen[0].pipeline[0]:"), "{e}");
    let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['nosuch']").expect_err("invalid");
    assert!(e.to_string().contains("unknown processor `nosuch`"), "{e}");
    let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[processors.hello]\nthreads_per_device=1")
        .expect_err("invalid");
    assert!(e.to_string().starts_with("processors.hello:"), "{e}");
    let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['echo']\n[processors.echo]\nqueue_per_device=0")
        .expect_err("invalid");
    assert!(e.to_string().starts_with("processors.echo.queue_per_device:"), "{e}");
    let e = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[replication]\nnice_priority = 20")
        .expect_err("invalid");
    assert!(e.to_string().starts_with("replication.nice_priority:"), "{e}");
    let c = parse("[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[replication]\nnice_priority = -5")
        .expect("valid");
    assert_eq!(c.replication.nice_priority, -5);
    for (line, key) in [
        ("per_diff = 0", "replication.per_diff:"),
        ("max_diffs = 0", "replication.max_diffs:"),
        ("databases_per_second = -1", "replication.databases_per_second:"),
        ("container_rsync_module = ''", "replication.container_rsync_module:"),
        ("account_rsync_module = 'a b::account'", "replication.account_rsync_module:"),
    ] {
        let e = parse(&format!("[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[replication]\n{line}"))
            .expect_err(line);
        assert!(e.to_string().starts_with(key), "{line}: {e}");
    }
    let c = parse(
        "[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[replication]\nper_diff = 3\n\
         container_rsync_module = 'rsync://{replication_ip}:873/container{replication_port}/'",
    )
    .expect("valid");
    assert_eq!(c.replication.per_diff, 3);
    assert_eq!(c.replication.container_rsync_module, "rsync://{replication_ip}:873/container{replication_port}");
    assert_eq!(c.replication.account_rsync_module, "{replication_ip}::account", "Swift's default");
    assert!(c.replication.db_replicator);
}

#[test]
fn processor_settings_belong_to_the_processors_the_catalog_names() {
    let base = "[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n";
    let c = parse(&format!("{base}[processors.container]\nconn_timeout = 0.25\nnode_timeout = 7\n")).expect("valid");
    assert_eq!(c.pools["container"].settings.conn_timeout, Some(Duration::from_millis(250)));
    assert_eq!(c.pools["container"].settings.node_timeout, Some(Duration::from_secs(7)));
    assert_eq!(c.pools["object"].settings.node_timeout, Some(Setting::NodeTimeout.default()), "defaulted");
    assert_eq!(c.pools["account"].settings, ProcessorSettings::default(), "takes none");
    let e = parse(&format!("{base}[processors.container]\ncontainer_update_timeout = 1\n")).expect_err("object only");
    assert!(e.to_string().starts_with("processors.container.container_update_timeout:"), "{e}");
    let e = parse(&format!("{base}[processors.account]\nconn_timeout = 1\n")).expect_err("not account");
    assert!(e.to_string().starts_with("processors.account.conn_timeout:"), "{e}");
}

#[test]
fn integer_seconds_are_accepted() {
    let c =
        parse("[server]\ngraceful_timeout = 5\n[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']").expect("valid");
    assert_eq!(c.server.graceful_timeout, Duration::from_secs(5));
}

#[test]
fn overrides_replace_workers_and_addresses() {
    let mut raw = RawConfig::load(&Source::Embedded).expect("parses");
    raw.apply(&Overrides { workers: Some(5), bind: vec!["127.0.0.1:0".into()], admin: None }).expect("applies");
    let c = raw.validate(&TestCatalog).expect("valid");
    assert_eq!(c.server.workers, 5);
    assert_eq!(c.listen[0].address.port(), 0);
    let mut raw = RawConfig::load(&Source::Embedded).expect("parses");
    assert!(raw.apply(&Overrides { workers: None, bind: vec!["a".into(), "b".into()], admin: None }).is_err());
}

#[test]
fn effective_config_round_trips() {
    let c = Config::load(&Source::Embedded, &Overrides::default(), &TestCatalog).expect("valid");
    let again = parse(&c.to_toml()).expect("rendered config parses");
    assert_eq!(c, again);
}

#[test]
fn routes_are_ordered_longest_prefix_first_and_trailing_slash_is_dropped() {
    let c = parse(
            "[[listen]]\naddress='127.0.0.1:1'\npipeline=['hello']\n[[listen.route]]\nprefix='/a/'\npipeline=['echo']\n[[listen.route]]\nprefix='/a/b'\npipeline=['hello']",
        )
        .expect("valid");
    let prefixes: Vec<&str> = c.listen[0].routes.iter().map(|r| r.prefix.as_str()).collect();
    assert_eq!(prefixes, ["/a/b", "/a"]);
}
