//! Ports for servers a test must name before they start (a ring's, a
//! config added on reload). A port the kernel handed out for `bind(:0)` is
//! in its ephemeral range, where any outgoing connection of any test may
//! take it between the pick and the server's bind; these come from just
//! below that range instead, each handed out once per test process.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many ports below the ephemeral range the allocator walks.
const SPAN: u32 = 16_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(32_768)
}

/// A loopback TCP port nobody listens on, outside the ephemeral range,
/// never returned twice by this process.
pub fn free_port() -> u16 {
    let low = ephemeral_low().clamp(SPAN + 1_024, 65_535);
    let base = low - SPAN;
    // Start where the process id points, so two test processes that run
    // at once walk different stretches.
    let _ = NEXT.compare_exchange(0, 1 + std::process::id() % SPAN, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = base + n % SPAN;
        if let Ok(port) = u16::try_from(port) {
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    panic!("no free port in {base}..{low}");
}
