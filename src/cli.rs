//! The command line.
//!
//! ```text
//! aerie [-c FILE] [--workers N] [--bind ADDR]... [--admin ADDR] [--check-config]
//! aerie status|reload|stop [-c FILE]
//! aerie import-swift-conf [DIR] [--node ID]
//! aerie --help | --version
//! ```

use crate::config::{Overrides, Source};
use std::path::PathBuf;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server.
    Run,
    /// Validate the configuration, print it, exit.
    CheckConfig,
    /// Print usage.
    Help,
    /// Print the version.
    Version,
    /// Ask the running server for its status.
    Status,
    /// Reload the running server and wait for the result.
    Reload,
    /// Stop the running server gracefully and wait for it to exit.
    Stop,
    /// Print an aerie.toml taken over from a Swift node's configuration.
    ImportSwiftConf {
        /// Swift's configuration directory.
        dir: PathBuf,
        /// Which node, when the directory configures several.
        node: Option<String>,
    },
}

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// What to do.
    pub command: Command,
    /// Where the config comes from.
    pub source: Source,
    /// Command-line overrides.
    pub overrides: Overrides,
}

/// Usage text.
pub const USAGE: &str = "\
usage: aerie [-c FILE] [--workers N] [--bind ADDR]... [--admin ADDR] [--check-config]
       aerie status|reload|stop [-c FILE]
       aerie import-swift-conf [DIR] [--node ID]

A prefork application server for Swift-style storage nodes.

options:
  -c, --config FILE   configuration file (default: the embedded configuration,
                      which serves hello at / and echo under /echo on
                      127.0.0.1:8080 with 2 workers)
      --workers N     override server.workers
      --bind ADDR     override the address of a [[listen]] section; the first
                      --bind replaces the first listener's, and so on
      --admin ADDR    override admin.address (an empty value turns the admin listener off)
      --check-config  validate the configuration, print the effective
                      configuration and exit (0: valid, 2: invalid)

commands (talk to the running server found through the configuration's
pid_file or admin address):
  status              print the server's status (JSON)
  reload              reload (SIGHUP) and wait until the new generation
                      serves; exit 1 if the reload was refused
  stop                stop gracefully (SIGTERM) and wait for the exit

  import-swift-conf [DIR] [--node ID]
                      read the Swift storage servers' configuration in DIR
                      (default /etc/swift: object-, container- and
                      account-server.conf, their conf.d directories and
                      per-server directories) and print an aerie.toml for
                      the node, each key naming the Swift setting it comes
                      from and each setting not taken over named with why;
                      --node picks one node of a directory that configures
                      several (a SAIO's 1, 2, 3, 4, or a devices root); exit
                      2 if the result does not pass --check-config here
  -h, --help          this text
  -V, --version       the version

signals: HUP reload, TERM graceful stop, INT/QUIT fast stop, TTIN/TTOU one
worker more/fewer, USR1 reopen log files, USR2 upgrade the binary in place.
See aerie(8) and aerie.toml(5).
";

/// Parse arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
    let mut command = Command::Run;
    let mut source = Source::Embedded;
    let mut overrides = Overrides::default();
    let mut it = args.into_iter().peekable();
    if it.peek().map(String::as_str) == Some("import-swift-conf") {
        it.next();
        return parse_import(it);
    }
    if let Some(first) = it.peek() {
        let sub = match first.as_str() {
            "status" => Some(Command::Status),
            "reload" => Some(Command::Reload),
            "stop" => Some(Command::Stop),
            _ => None,
        };
        if let Some(sub) = sub {
            command = sub;
            it.next();
        }
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-c" | "--config" => source = Source::File(crate::config::absolute(&PathBuf::from(value(&flag)?))),
            "--workers" => {
                let v = value(&flag)?;
                overrides.workers = Some(v.parse().map_err(|_| format!("--workers: `{v}` is not a number"))?);
            }
            "--bind" => overrides.bind.push(value(&flag)?),
            "--admin" => overrides.admin = Some(value(&flag)?),
            "--check-config" => command = Command::CheckConfig,
            "-h" | "--help" => command = Command::Help,
            "-V" | "--version" => command = Command::Version,
            other => return Err(format!("unknown argument `{other}` (see aerie --help)")),
        }
    }
    Ok(Args { command, source, overrides })
}

/// `import-swift-conf [DIR] [--node ID]`.
fn parse_import<I: Iterator<Item = String>>(mut it: I) -> Result<Args, String> {
    let mut dir: Option<PathBuf> = None;
    let mut node = None;
    while let Some(arg) = it.next() {
        match arg.split_once('=') {
            Some(("--node", v)) => node = Some(v.to_string()),
            _ if arg == "--node" => node = Some(it.next().ok_or("--node needs a value")?),
            _ if arg == "-h" || arg == "--help" => {
                return Ok(Args { command: Command::Help, source: Source::Embedded, overrides: Overrides::default() })
            }
            _ if arg.starts_with('-') => return Err(format!("import-swift-conf: unknown option `{arg}`")),
            _ if dir.is_some() => return Err(format!("import-swift-conf: one directory only (`{arg}` is a second)")),
            _ => dir = Some(crate::config::absolute(&PathBuf::from(arg))),
        }
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(crate::import::DEFAULT_DIR));
    Ok(Args {
        command: Command::ImportSwiftConf { dir, node },
        source: Source::Embedded,
        overrides: Overrides::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_to_running_the_embedded_config() {
        let a = p(&[]).expect("valid");
        assert_eq!(a.command, Command::Run);
        assert_eq!(a.source, Source::Embedded);
    }

    #[test]
    fn parses_overrides_both_ways() {
        let a = p(&["--workers", "3", "--bind=127.0.0.1:0", "--bind", "127.0.0.1:1", "--check-config"]).expect("valid");
        assert_eq!(a.overrides.workers, Some(3));
        assert_eq!(a.overrides.bind, ["127.0.0.1:0", "127.0.0.1:1"]);
        assert_eq!(a.command, Command::CheckConfig);
    }

    #[test]
    fn subcommands_come_first() {
        assert_eq!(p(&["status", "-c", "/x.toml"]).expect("valid").command, Command::Status);
        assert_eq!(p(&["reload"]).expect("valid").command, Command::Reload);
        assert_eq!(p(&["stop"]).expect("valid").command, Command::Stop);
        assert!(p(&["-c", "/x", "status"]).is_err());
    }

    #[test]
    fn parses_import_swift_conf() {
        let c = |v: &[&str]| p(v).expect("valid").command;
        assert_eq!(
            c(&["import-swift-conf"]),
            Command::ImportSwiftConf { dir: PathBuf::from("/etc/swift"), node: None }
        );
        assert_eq!(
            c(&["import-swift-conf", "/srv/swift", "--node", "2"]),
            Command::ImportSwiftConf { dir: PathBuf::from("/srv/swift"), node: Some("2".into()) }
        );
        assert_eq!(
            c(&["import-swift-conf", "--node=/srv/1/node"]),
            Command::ImportSwiftConf { dir: PathBuf::from("/etc/swift"), node: Some("/srv/1/node".into()) }
        );
        assert!(p(&["import-swift-conf", "/a", "/b"]).is_err());
        assert!(p(&["import-swift-conf", "--node"]).is_err());
        assert!(p(&["import-swift-conf", "-c", "x"]).is_err());
    }

    #[test]
    fn rejects_unknown_and_incomplete_arguments() {
        assert!(p(&["--nope"]).is_err());
        assert!(p(&["-c"]).is_err());
        assert!(p(&["--workers", "x"]).is_err());
    }
}
