//! The anonymous shared mapping behind the scoreboard: an array of
//! `AtomicU64` words shared with every child forked after it is made.

use std::num::NonZeroUsize;
use std::sync::atomic::AtomicU64;

/// Map `words` zeroed 64-bit atomics shared (MAP_SHARED | MAP_ANONYMOUS)
/// with every future child, for the life of the process.
pub fn shared_words(words: usize) -> nix::Result<&'static [AtomicU64]> {
    use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
    let bytes = words.checked_mul(std::mem::size_of::<AtomicU64>()).ok_or(nix::Error::EINVAL)?;
    let len = NonZeroUsize::new(bytes).ok_or(nix::Error::EINVAL)?;
    // SAFETY: an anonymous mapping at a kernel-chosen address cannot alias
    // any existing Rust allocation; the kernel zero-fills it.
    let ptr = unsafe { mmap_anonymous(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED) }?;
    // SAFETY: the mapping is `bytes` long, page-aligned (enough for
    // AtomicU64), zero-filled (a valid AtomicU64), and never unmapped, so
    // the slice is valid for 'static. Other processes touch it only through
    // atomic operations, so sharing it is data-race free.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>().as_ptr(), words) })
}
