//! aerie: a node-wide prefork application server for storage nodes.
//!
//! The master ([`master`]) binds the listeners ([`listeners`]) and forks
//! workers ([`worker`]); each worker is one single-threaded mio loop that
//! speaks HTTP/1.1 ([`http`], sans-io) and hands requests to compiled-in
//! processors ([`registry`]) inline or on per-key thread pools. `DESIGN.md`
//! explains the shape; `STYLE.md` the conventions.
//!
//! Module boundaries: `master` and `worker` never reach into each other;
//! they share `config`, `listeners` and `sys`. Only `sys` may use `unsafe`.

pub mod admin;
pub mod cli;
pub mod config;
pub mod control;
pub mod error;
pub mod http;
pub mod listeners;
pub mod log;
pub mod master;
pub mod notify;
pub mod registry;
pub mod scoreboard;
pub mod sys;
pub mod updater;
pub mod worker;

use error::Error;

/// Run the command line; returns the exit code.
pub fn main_with_args<I: IntoIterator<Item = String>>(args: I) -> i32 {
    match run(args) {
        Ok(()) => error::EXIT_OK,
        Err(e) => {
            eprintln!("aerie: {e}");
            e.exit_code()
        }
    }
}

fn run<I: IntoIterator<Item = String>>(args: I) -> Result<(), Error> {
    let args = cli::parse(args).map_err(Error::Usage)?;
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
            let config = config::Config::load(&args.source, &args.overrides)?;
            println!("# {}: valid", args.source);
            print!("{}", config.to_toml());
            Ok(())
        }
        cli::Command::Run => {
            let config = config::Config::load(&args.source, &args.overrides)?;
            log::configure(&config.log.settings())
                .map_err(|e| Error::Usage(format!("could not open the log files: {e}")))?;
            ::log::info!("aerie {} starting with {}", env!("CARGO_PKG_VERSION"), args.source);
            let mut inherited = listeners::Inherited::from_env();
            let (inherited_workers, generation) = master::upgrade_env();
            let listeners = listeners::reconcile(&config, &mut Vec::new(), &mut inherited)?;
            inherited.report_unused();
            let exe = std::env::current_exe().map_err(|e| Error::Usage(format!("cannot find my own binary: {e}")))?;
            let startup = master::Startup {
                source: args.source,
                overrides: args.overrides,
                config,
                listeners,
                exe,
                args: std::env::args_os().skip(1).collect(),
                inherited_workers,
                generation,
            };
            master::Master::new(startup)?.run()?;
            Ok(())
        }
        cli::Command::Status => control::status(&args.source, &args.overrides),
        cli::Command::Reload => control::reload(&args.source, &args.overrides),
        cli::Command::Stop => control::stop(&args.source, &args.overrides),
    }
}
