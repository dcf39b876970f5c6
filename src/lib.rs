//! aerie: a node-wide prefork application server for storage nodes.
//!
//! The master ([`master`]) binds the listeners ([`listeners`]) and forks
//! workers ([`worker`]) and background roles ([`background`]); each worker is
//! one single-threaded mio loop that speaks HTTP/1.1 ([`http`], sans-io) and
//! hands requests to compiled-in processors ([`catalog`], [`pipeline`])
//! inline or on per-key thread pools. `DESIGN.md` explains the shape;
//! `STYLE.md` the conventions.
//!
//! Layers, imports pointing down only (`tests/layers.rs` checks it):
//!
//! ```text
//! sys exit clock role notify          leaves
//! config scoreboard http              what every role reads
//! listeners log catalog child         set-up shared by the roles
//! pipeline admin worker updater       the children
//! master cli control import           the master and the command line
//! ```
//!
//! Only `sys` may use `unsafe`.

pub mod admin;
pub mod background;
pub mod catalog;
pub mod child;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod exit;
pub mod http;
pub mod import;
pub mod listeners;
pub mod log;
pub mod master;
pub mod notify;
pub mod pipeline;
pub mod role;
pub mod scoreboard;
pub mod sys;
pub mod worker;

use exit::ExitCode;

/// Everything that can stop the command from starting or running; each
/// knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] listeners::ListenError),
    /// The log files could not be opened.
    #[error("could not open the log files: {0}")]
    OpenLogs(std::io::Error),
    /// The running binary could not be found (it is what USR2 re-executes).
    #[error("cannot find my own binary: {0}")]
    FindExe(std::io::Error),
    /// The master failed.
    #[error(transparent)]
    Master(#[from] master::MasterError),
    /// `import-swift-conf` could not take the Swift configuration over.
    #[error("import-swift-conf: {0}")]
    Import(String),
    /// A control command (status, reload, stop) failed.
    #[error(transparent)]
    Control(#[from] control::ControlError),
}

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::Import(_) => ExitCode::Usage,
            Error::Config(e) => e.exit_code(),
            Error::Listen(_) | Error::OpenLogs(_) | Error::FindExe(_) => ExitCode::Failure,
            Error::Control(e) => e.exit_code(),
            Error::Master(e) => e.exit_code(),
        }
    }
}

/// Run the command line; returns the exit code.
pub fn main_with_args<I: IntoIterator<Item = String>>(args: I) -> i32 {
    match run(args) {
        Ok(()) => ExitCode::Ok.code(),
        Err(e) => {
            eprintln!("aerie: {e}");
            e.exit_code().code()
        }
    }
}

fn run<I: IntoIterator<Item = String>>(args: I) -> Result<(), Error> {
    let args = cli::parse(args).map_err(Error::Usage)?;
    let catalog = &catalog::CATALOG;
    match args.command {
        cli::Command::Help => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        cli::Command::Version => {
            println!("aerie {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        cli::Command::CheckConfig => {
            let config = config::Config::load(&args.source, &args.overrides, catalog)?;
            println!("# {}: valid", args.source);
            print!("{}", config.to_toml());
            Ok(())
        }
        cli::Command::ImportSwiftConf { dir, node } => import_swift_conf(&dir, node.as_deref()),
        cli::Command::Run => serve(args),
        cli::Command::Status => Ok(control::status(&args.source, &args.overrides)?),
        cli::Command::Reload => Ok(control::reload(&args.source, &args.overrides)?),
        cli::Command::Stop => Ok(control::stop(&args.source, &args.overrides)?),
    }
}

/// `aerie import-swift-conf`: print the node's aerie.toml, say on stderr
/// what the operator must know, and fail (after printing) when the result
/// would not pass `--check-config` on this machine.
fn import_swift_conf(dir: &std::path::Path, node: Option<&str>) -> Result<(), Error> {
    let (text, warnings) = import::import(dir, node).map_err(|e| Error::Import(e.to_string()))?;
    print!("{text}");
    for w in &warnings {
        eprintln!("aerie: import-swift-conf: {w}");
    }
    import::check(&text).map_err(|e| {
        Error::Import(format!("the imported configuration does not pass --check-config on this machine: {e}"))
    })
}

/// Run the server. After a USR2 upgrade, a failure before the master is up
/// goes back to the previous binary instead of ending the node.
fn serve(args: cli::Args) -> Result<(), Error> {
    let mut inherited = master::upgrade_env();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| start(&args, &mut inherited)));
    let result = match result {
        Ok(r) => r,
        Err(_) => Err(Error::Usage("the server panicked while starting".into())),
    };
    if let Err(e) = &result {
        if let Some(rollback) = inherited.rollback.take() {
            ::log::error!("the upgraded binary cannot start ({e}): going back to the previous one");
            let why = rollback.exec(&std::env::args_os().skip(1).collect::<Vec<_>>());
            ::log::error!("could not go back to the previous binary: {why}");
        }
    }
    result
}

fn start(args: &cli::Args, inherited: &mut master::UpgradeInherited) -> Result<(), Error> {
    let catalog = &catalog::CATALOG;
    let config = match inherited.config.take() {
        // Back after a failed upgrade: what this image ran before it.
        Some(text) => config::RawConfig::parse(&text, &args.source)
            .and_then(|mut raw| raw.apply(&args.overrides).map(|_| raw))
            .and_then(|raw| raw.validate(catalog))?,
        None => config::Config::load(&args.source, &args.overrides, catalog)?,
    };
    log::configure(&config.log).map_err(Error::OpenLogs)?;
    ::log::info!("aerie {} starting with {}", env!("CARGO_PKG_VERSION"), args.source);
    if inherited.rolled_back {
        ::log::error!("the upgrade failed: back on this binary, serving the configuration it ran before");
    }
    let mut fds = listeners::Inherited::from_env();
    // A fresh start waits for a stopping server to let go of its addresses;
    // an upgrade goes back to the running binary at once instead.
    let bind_wait = if inherited.rollback.is_some() { std::time::Duration::ZERO } else { config.server.bind_timeout };
    let listeners = listeners::reconcile(&config, &mut Vec::new(), &mut fds, bind_wait)?;
    fds.report_unused();
    let exe = match inherited.exe.take() {
        Some(p) => p,
        None => std::env::current_exe().map_err(Error::FindExe)?,
    };
    let startup = master::Startup {
        source: args.source.clone(),
        overrides: args.overrides.clone(),
        config,
        listeners,
        exe,
        args: std::env::args_os().skip(1).collect(),
        inherited: std::mem::take(inherited),
    };
    master::Master::new(startup)?.run()?;
    Ok(())
}
