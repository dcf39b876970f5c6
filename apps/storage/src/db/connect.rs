//! Opening databases: aerie's connection settings (busy timeout, journal
//! mode, the `chexor` function Swift's triggers call) and a per-thread
//! cache of open connections, reused only while the path still names the
//! same file.

use super::BUSY_TIMEOUT;
use md5::{Digest, Md5};
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// `old XOR md5("<name>-<timestamp>")`, as 32 hex digits (Swift's chexor).
pub fn chexor(old: &str, name: &str, ts: &str) -> String {
    let new = Md5::digest(format!("{name}-{ts}").as_bytes());
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        let o = old.get(i * 2..i * 2 + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
        *b = o ^ new[i];
    }
    crate::hash::hex(&out)
}

/// Register the SQL functions Swift's triggers call (`chexor`).
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function("chexor", 3, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        let old: String = ctx.get(0)?;
        let name: String = ctx.get(1)?;
        let ts: String = ctx.get(2)?;
        Ok(chexor(&old, &name, &ts))
    })
}

/// How long one wait for another connection's lock lasts.
const LOCK_WAIT_STEP: Duration = Duration::from_millis(1);

/// The busy handler: while another connection holds the lock (a commit,
/// usually milliseconds), wait a millisecond at a time, up to
/// [`BUSY_TIMEOUT`] since the first try (then the statement fails busy: a
/// 503). SQLite's own timeout waits ever longer, up to 100 ms a step, so a
/// listing behind a 20 ms commit would wait 50 ms or more.
fn wait_for_lock(tries: i32) -> bool {
    thread_local! {
        // When this thread's current wait began (SQLite counts the tries
        // of one wait from 0; a wait belongs to the thread running the
        // statement).
        static SINCE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let since = SINCE.with(|s| {
        if tries == 0 {
            s.set(Some(now));
        }
        s.get().unwrap_or(now)
    });
    if now.duration_since(since) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(LOCK_WAIT_STEP);
    true
}

/// Open a database file with aerie's settings (busy handler, functions).
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    // A transaction keeps its changed pages in memory until it commits
    // instead of spilling them into the file when the cache fills: a spill
    // takes the exclusive lock for the rest of the transaction, and every
    // reader (a listing) would wait for a whole replicated batch instead of
    // its commit.
    conn.pragma_update(None, "cache_spill", false)?;
    register_functions(&conn)?;
    Ok(conn)
}

/// Which file a path names now: (device, inode).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Connections each pool thread keeps open between requests.
const CACHED_CONNECTIONS: usize = 16;

/// An open connection kept for reuse, with the file it was opened on.
struct Cached {
    path: std::path::PathBuf,
    id: (u64, u64),
    conn: Connection,
}

thread_local! {
    // Per thread, so connections are opened after fork and never shared.
    static CONNECTIONS: std::cell::RefCell<Vec<Cached>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A connection to `path` and the file it is on: a kept one when the path
/// still names the same file (a quarantined, replaced or replicated-over
/// database is never served from an old connection), a new one otherwise.
/// Reusing connections keeps SQLite's page cache warm across requests;
/// SQLite itself notices changes made by other connections and processes.
pub fn connect_cached(path: &Path) -> rusqlite::Result<(Connection, Option<(u64, u64)>)> {
    let id = file_id(path);
    let kept = CONNECTIONS.with(|c| {
        let mut c = c.borrow_mut();
        let i = c.iter().position(|k| k.path == path)?;
        let k = c.swap_remove(i);
        (Some(k.id) == id).then_some(k.conn)
    });
    match kept {
        Some(conn) => Ok((conn, id)),
        None => Ok((connect(path)?, id)),
    }
}

/// Give a connection from [`connect_cached`] back for reuse (dropped when
/// a transaction is still open or the cache is full).
pub fn keep_connection(path: &Path, id: Option<(u64, u64)>, conn: Connection) {
    let Some(id) = id else { return };
    if !conn.is_autocommit() {
        return;
    }
    CONNECTIONS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHED_CONNECTIONS {
            c.remove(0);
        }
        c.push(Cached { path: path.to_path_buf(), id, conn });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_waits_for_a_writers_commit_instead_of_failing() {
        let dir = crate::fs::tests::scratch("busy");
        let path = dir.join("t.db");
        let setup = Connection::open(&path).expect("create");
        setup.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").expect("schema");
        let writer = connect(&path).expect("writer");
        let reader = connect(&path).expect("reader");
        writer.execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);").expect("lock");
        let reader = std::thread::spawn(move || reader.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)));
        std::thread::sleep(Duration::from_millis(200));
        writer.execute_batch("COMMIT").expect("commit");
        assert_eq!(reader.join().expect("reader thread").expect("read after the commit"), 2);
    }
}
