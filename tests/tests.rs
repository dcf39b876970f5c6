//! Integration tests: one binary, topic modules, helpers in `util`.

mod util;

mod account_api;
mod chaos;
mod container_api;
mod db_concurrency;
mod docs;
mod erasure_coding;
mod fuzz_smoke;
mod http_conformance;
mod import;
mod layers;
mod lifecycle;
mod object_api;
mod parser_corpus;
mod proxy_middlewares;
mod recon;
mod replication;
mod robustness;
mod slow_disk;
mod supervision;
mod swift_cluster;
mod upgrade;
