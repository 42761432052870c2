//! Fault injection for crash tests: debug builds only.
//!
//! With `VOXSEAL_FAULT_KILL_AT=<point>` or `<point>:<n>` in the environment, the process aborts
//! (no destructors, no buffered writes flushed, no cleanup: what SIGKILL or a power cut leaves)
//! the `n`-th time (default: the first) execution passes the named point. The crash tests
//! (`crates/voxseal-cli/tests/crash.rs`) use it to stop the real `voxseal` binary at exact steps
//! of recording, sealing and uploading, then check what a restart finds.
//!
//! The variable is read only in builds with debug assertions; in release builds [`hit`] is a
//! constant `false` and every point compiles to nothing.
//!
//! | point | where |
//! | --- | --- |
//! | `spool.chunk` | after a spool chunk is written (recording) |
//! | `seal.raw` | after the raw payload is sealed into staging |
//! | `seal.features` | after the features payload is sealed into staging |
//! | `seal.commit` | before the staging directory is renamed into the outbox |
//! | `seal.unlogged` | after the item is in the outbox, before its `take.sealed` event |
//! | `seal.committed` | after the item is in the outbox and logged, before the spool is wiped |
//! | `audit.torn` | halfway through writing an audit line |
//! | `upload.part` | after a multipart part is acknowledged and recorded |
//! | `upload.stored` | after S3 confirmed an object, before the state is saved |
//! | `upload.completed` | after S3 completed a multipart upload, before its checksum is checked |
//! | `upload.saved` | after the state says so, before the local ciphertext is deleted |
//! | `upload.deleted` | after a payload's local ciphertext is deleted |
//! | `upload.done` | after the item is saved as uploaded, before its audit event |

/// The environment variable naming the point to abort at.
pub const ENV: &str = "VOXSEAL_FAULT_KILL_AT";

/// Counts a pass through `point`; true when this is the pass to fail at (debug builds only).
/// Callers that need to leave something half-done first (a torn write) use this; others use
/// [`point`].
#[inline]
pub fn hit(point: &str) -> bool {
    #[cfg(debug_assertions)]
    {
        imp::hit(point)
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = point;
        false
    }
}

/// Aborts the process here if `VOXSEAL_FAULT_KILL_AT` names this pass (debug builds only).
#[inline]
pub fn point(point: &str) {
    if hit(point) {
        abort(point);
    }
}

/// Aborts at once, saying where (stderr is unbuffered).
pub fn abort(point: &str) -> ! {
    eprintln!("voxseal: fault injection: aborting at {point}");
    std::process::abort()
}

#[cfg(debug_assertions)]
mod imp {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    fn parse() -> Option<(String, u64)> {
        let spec = std::env::var(super::ENV).ok()?;
        match spec.split_once(':') {
            Some((p, n)) => Some((p.to_owned(), n.parse().ok().filter(|n| *n >= 1)?)),
            None => Some((spec, 1)),
        }
    }

    pub(super) fn hit(point: &str) -> bool {
        match TARGET.get_or_init(parse) {
            Some((p, n)) if p == point => HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n,
            _ => false,
        }
    }
}
