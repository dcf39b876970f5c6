//! The slow disk of the benchmarks, as a program (the tests mount the same
//! filesystem in-process, tests/util/slowfs.rs):
//!
//!   slowfs SOURCE MOUNTPOINT [--delay-ms N] [--threads N] [--control FILE]
//!
//! Mirrors SOURCE at MOUNTPOINT, sleeping N ms in every disk operation.
//! With --control, FILE is re-read every 100 ms: `delay_ms=N` and
//! `errno=N` lines change the delay and make operations fail. On exit
//! (SIGINT, SIGTERM) it prints the operation count and unmounts.

#[path = "../tests/util/slowfs.rs"]
#[allow(dead_code)]
mod slowfs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(mountpoint)) = (args.next(), args.next()) else {
        eprintln!("usage: slowfs SOURCE MOUNTPOINT [--delay-ms N] [--threads N] [--control FILE]");
        std::process::exit(2);
    };
    let (mut delay, mut threads, mut control) = (0u64, 32usize, None::<PathBuf>);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--delay-ms" => delay = v.parse().unwrap_or(0),
            "--threads" => threads = v.parse().unwrap_or(32),
            "--control" => control = Some(PathBuf::from(v)),
            _ => {
                eprintln!("slowfs: unknown option {a}");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = slowfs::ensure_fuse() {
        eprintln!("slowfs: {e}");
        std::process::exit(1);
    }
    let fs = match slowfs::SlowFs::mount(source.as_ref(), mountpoint.as_ref(), threads) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("slowfs: cannot mount {source} at {mountpoint}: {e}");
            std::process::exit(1);
        }
    };
    fs.control.delay_ms.store(delay, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    println!("slowfs: {source} mounted at {mountpoint}, {delay} ms per operation");
    while !stop.load(Ordering::Relaxed) {
        if let Some(text) = control.as_ref().and_then(|c| std::fs::read_to_string(c).ok()) {
            for line in text.lines() {
                match line.split_once('=') {
                    Some(("delay_ms", v)) => {
                        fs.control.delay_ms.store(v.trim().parse().unwrap_or(0), Ordering::Relaxed)
                    }
                    Some(("errno", v)) => fs.control.errno.store(v.trim().parse().unwrap_or(0), Ordering::Relaxed),
                    _ => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("slowfs: {} operations", fs.control.ops.load(Ordering::Relaxed));
}
