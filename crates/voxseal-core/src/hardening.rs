//! Process hardening: no core dumps, and secrets and plaintext audio kept out of swap.
//!
//! [`disable_core_dumps`] runs first thing in every Voxseal process (CLI, broker, desktop app):
//! a crash must not write the spool keys or the plaintext audio in memory to a core file.
//! [`MemLock`] pins a buffer's pages in RAM (mlock / VirtualLock) so that the kernel does not
//! page them out to swap. Locking is limited by the OS (RLIMIT_MEMLOCK, often 8 MiB for an
//! unprivileged user); when it fails the buffer is used unlocked and one line says so on stderr.
//! What neither covers (hibernation, root, a failed lock) is in docs/wipe.md.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What [`disable_core_dumps`] managed to do on this OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoreDumpReport {
    /// The core file size limit (soft and hard) is now 0.
    pub rlimit_core_zero: bool,
    /// The process is marked not dumpable (Linux `PR_SET_DUMPABLE` 0): no core file even if a
    /// limit is raised again, and other processes of the same user cannot ptrace or read its
    /// memory through /proc.
    pub not_dumpable: bool,
    /// Windows Error Reporting is told never to report a crash of this program (the per-user
    /// `ExcludedApplications` setting), so no report with this process's memory in it is sent.
    /// Whether an administrator's `LocalDumps` policy honours it is not verified (docs/windows.md).
    pub error_reports_off: bool,
}

/// Disables core dumps for this process: RLIMIT_CORE 0 (soft and hard, so it cannot be raised
/// again) on Unix, and `PR_SET_DUMPABLE` 0 on Linux. On Windows crash dumps come from Windows
/// Error Reporting, which is told to leave this program out (docs/windows.md says what that
/// does and does not cover). Failures are reported in the result, never fatal: the caller logs
/// them.
pub fn disable_core_dumps() -> CoreDumpReport {
    CoreDumpReport {
        rlimit_core_zero: set_rlimit_core_zero(),
        not_dumpable: set_not_dumpable(),
        error_reports_off: exclude_from_error_reporting(),
    }
}

/// The per-user key whose values name the programs Windows Error Reporting leaves out (what
/// `WerAddExcludedApplication` writes; Microsoft's "WER Settings").
#[cfg(windows)]
pub const WER_EXCLUDED_KEY: &str =
    r"Software\Microsoft\Windows\Windows Error Reporting\ExcludedApplications";

fn exclude_from_error_reporting() -> bool {
    #[cfg(windows)]
    {
        let exe = std::env::current_exe().ok();
        let Some(name) = exe.as_deref().and_then(std::path::Path::file_name) else {
            return false;
        };
        windows_registry::CURRENT_USER
            .create(WER_EXCLUDED_KEY)
            .and_then(|key| key.set_u32(name.to_string_lossy(), 1))
            .is_ok()
    }
    #[cfg(not(windows))]
    false
}

fn set_rlimit_core_zero() -> bool {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let zero = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        setrlimit(Resource::Core, zero).is_ok()
    }
    #[cfg(not(unix))]
    false
}

fn set_not_dumpable() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::process::{DumpableBehavior, set_dumpable_behavior};
        set_dumpable_behavior(DumpableBehavior::NotDumpable).is_ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    false
}

impl CoreDumpReport {
    /// Whether everything this OS offers was done.
    pub fn complete(&self) -> bool {
        let rlimit = self.rlimit_core_zero || !cfg!(unix);
        let dumpable = self.not_dumpable || !cfg!(any(target_os = "linux", target_os = "android"));
        let reports = self.error_reports_off || !cfg!(windows);
        rlimit && dumpable && reports
    }
}

/// [`disable_core_dumps`] for a program's first line: says on stderr what could not be done.
pub fn harden_process() -> CoreDumpReport {
    let report = disable_core_dumps();
    if !report.complete() {
        eprintln!(
            "voxseal: warning: could not fully disable core dumps ({report:?}); a crash could write \
             keys or audio to a core file"
        );
    }
    report
}

/// Whether this process can write a core file now, as far as this OS tells.
pub fn core_dumps_possible() -> bool {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        if limit.current == Some(0) {
            return false;
        }
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::process::{DumpableBehavior, dumpable_behavior};
        if matches!(dumpable_behavior(), Ok(DumpableBehavior::NotDumpable)) {
            return false;
        }
    }
    true
}

/// Locked pages: page address -> (how many live [`MemLock`]s cover it, its lock). The OS does
/// not count locks (one munlock undoes any number of mlocks), so two buffers sharing a page
/// would otherwise unlock each other's page when the first is dropped.
static PAGES: Mutex<Option<HashMap<usize, (usize, region::LockGuard)>>> = Mutex::new(None);
static WARNED: AtomicBool = AtomicBool::new(false);
static FAILED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Keeps the pages of one buffer in RAM until dropped (best effort; see the module docs).
///
/// The buffer must not move or reallocate while locked: lock heap memory of fixed capacity
/// (a `Box`, or a `Vec` that never grows past its capacity), and drop the `MemLock` BEFORE the
/// buffer is freed (declare it before the buffer in a struct; zeroize in the struct's `drop`):
/// unlocking memory that was already returned to the OS fails, which `region` asserts against
/// in debug builds.
#[derive(Debug)]
#[must_use = "the pages are unlocked when the MemLock is dropped"]
pub struct MemLock {
    pages: Vec<usize>,
    complete: bool,
}

impl MemLock {
    /// Locks the pages holding `buf`. If the OS refuses (RLIMIT_MEMLOCK, no permission), the
    /// first failure in the process prints one line to stderr and the buffer stays unlocked
    /// (wholly: pages locked before the failure are released, leaving the limit to the small
    /// buffers that hold keys).
    pub fn new<T>(buf: &[T]) -> Self {
        let bytes = size_of_val(buf);
        if bytes == 0 {
            return Self {
                pages: Vec::new(),
                complete: true,
            };
        }
        let page = region::page::size();
        let start = buf.as_ptr() as usize / page * page;
        let end = buf.as_ptr() as usize + bytes;
        let mut guard = PAGES.lock().unwrap_or_else(|e| e.into_inner());
        let table = guard.get_or_insert_with(HashMap::new);
        let mut pages = Vec::new();
        for addr in (start..end).step_by(page) {
            if let Some((count, _)) = table.get_mut(&addr) {
                *count += 1;
                pages.push(addr);
                continue;
            }
            match region::lock(addr as *const u8, page) {
                Ok(guard) => {
                    table.insert(addr, (1, guard));
                    pages.push(addr);
                }
                Err(e) => {
                    FAILED_BYTES.fetch_add(((end - addr) as u64).max(1), Ordering::Relaxed);
                    if !WARNED.swap(true, Ordering::Relaxed) {
                        eprintln!(
                            "voxseal: warning: could not lock {bytes} bytes of key or audio memory in RAM ({e}); \
                             they may be written to swap. Raise the locked-memory limit (ulimit -l) to avoid this; \
                             see docs/wipe.md."
                        );
                    }
                    release(table, &mut pages);
                    return Self {
                        pages,
                        complete: false,
                    };
                }
            }
        }
        Self {
            pages,
            complete: true,
        }
    }

    /// Whether every page of the buffer was locked.
    pub fn is_locked(&self) -> bool {
        self.complete
    }
}

/// Takes one count off each of `pages`, unlocking those no other [`MemLock`] covers.
fn release(table: &mut HashMap<usize, (usize, region::LockGuard)>, pages: &mut Vec<usize>) {
    for addr in pages.drain(..) {
        if let Some((count, _)) = table.get_mut(&addr) {
            *count -= 1;
            if *count == 0 {
                table.remove(&addr);
            }
        }
    }
}

impl Drop for MemLock {
    fn drop(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        let mut guard = PAGES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = guard.as_mut() {
            release(table, &mut self.pages);
        }
    }
}

/// Bytes that could not be locked so far in this process (0 when every lock succeeded).
pub fn unlocked_bytes() -> u64 {
    FAILED_BYTES.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VmLck of this process in kB, from /proc/self/status.
    #[cfg(target_os = "linux")]
    fn vm_lck_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Whether this process may lock `bytes` more (root, or a large enough RLIMIT_MEMLOCK).
    #[cfg(target_os = "linux")]
    fn can_lock(bytes: u64) -> bool {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Memlock);
        rustix::process::geteuid().is_root() || limit.current.is_none_or(|l| l >= bytes * 4)
    }

    /// Runs `test` (this module's test of that name) alone in a child process: it changes
    /// process-wide state, or measures it, which other tests running in parallel would disturb.
    /// Returns true in the child, where the caller then does the work.
    #[cfg(unix)]
    fn in_child(test: &str) -> bool {
        in_child_with(test, &[])
    }

    /// [`in_child`], with the child started through `wrapper` (a program and its arguments).
    #[cfg(unix)]
    fn in_child_with(test: &str, wrapper: &[&str]) -> bool {
        if std::env::var_os("VOXSEAL_HARDENING_CHILD").is_some() {
            return true;
        }
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = std::process::Command::new(program);
                c.args(args).arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        let out = cmd
            .args(["--exact", &format!("hardening::tests::{test}")])
            .env("VOXSEAL_HARDENING_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        false
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_locked_buffer_shows_in_vm_lck_and_is_released_on_drop() {
        if !in_child("a_locked_buffer_shows_in_vm_lck_and_is_released_on_drop") {
            return;
        }
        const LEN: usize = 1 << 20;
        assert!(
            can_lock(LEN as u64),
            "this test needs RLIMIT_MEMLOCK >= 4 MiB or root (ulimit -l)"
        );
        let before = vm_lck_kb();
        let buf = vec![7u8; LEN];
        let lock = MemLock::new(&buf);
        let during = vm_lck_kb();
        assert!(
            during >= before + (LEN as u64 / 1024),
            "VmLck {before} kB -> {during} kB"
        );
        // A second lock sharing pages keeps them locked when the first goes.
        let again = MemLock::new(&buf[..4096]);
        drop(lock);
        assert!(vm_lck_kb() >= before + 4, "the shared page stays locked");
        drop(again);
        assert!(vm_lck_kb() <= during - (LEN as u64 / 1024));
        drop(buf);
    }

    /// A large buffer is its own mapping, returned to the OS when freed: its lock must go
    /// first (region's guard asserts that munlock succeeds, in debug builds).
    #[test]
    fn owners_unlock_before_they_free() {
        for _ in 0..3 {
            let pcm = crate::dsp::pcm::MemoryPcm::new(vec![0.5; 1 << 20], 16_000);
            assert_eq!(pcm.samples().len(), 1 << 20);
            drop(pcm);
        }
    }

    #[test]
    fn an_empty_buffer_needs_no_lock() {
        let empty: [u8; 0] = [];
        let lock = MemLock::new(&empty);
        assert!(lock.pages.is_empty() && lock.is_locked());
    }

    /// In a child process, so that the rest of the test process keeps its limits.
    #[cfg(unix)]
    #[test]
    fn core_dumps_are_off_after_disable() {
        if in_child("core_dumps_are_off_after_disable") {
            let report = disable_core_dumps();
            assert!(report.rlimit_core_zero);
            #[cfg(target_os = "linux")]
            {
                assert!(report.not_dumpable);
                assert_eq!(
                    rustix::process::dumpable_behavior().unwrap(),
                    rustix::process::DumpableBehavior::NotDumpable
                );
            }
            let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
            assert_eq!((limit.current, limit.maximum), (Some(0), Some(0)));
            assert!(!core_dumps_possible());
        }
    }

    /// The test executable's name is left out of error reporting, in the registry where Windows
    /// Error Reporting reads it (Wine's registry under Wine); the value is removed again.
    #[cfg(windows)]
    #[test]
    fn windows_error_reporting_leaves_the_program_out() {
        let report = disable_core_dumps();
        assert!(report.error_reports_off && report.complete(), "{report:?}");
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        let key = windows_registry::CURRENT_USER
            .create(WER_EXCLUDED_KEY)
            .unwrap();
        assert_eq!(key.get_u32(&name).unwrap(), 1, "{WER_EXCLUDED_KEY}\\{name}");
        key.remove_value(&name).unwrap();
    }

    /// A buffer larger than the locked-memory limit is left wholly unlocked (its pages do not
    /// use up the limit the keys need), and smaller ones still lock afterwards.
    #[cfg(target_os = "linux")]
    #[test]
    fn over_the_limit_nothing_stays_locked_and_keys_still_lock() {
        // CAP_IPC_LOCK (root's) ignores RLIMIT_MEMLOCK: the child runs without it
        // (util-linux `setpriv` drops it from the bounding set before exec).
        let wrapper: &[&str] = if rustix::process::geteuid().is_root() {
            &["setpriv", "--bounding-set", "-ipc_lock"]
        } else {
            &[]
        };
        if !in_child_with(
            "over_the_limit_nothing_stays_locked_and_keys_still_lock",
            wrapper,
        ) {
            return;
        }
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = Rlimit {
            current: Some(256 * 1024),
            maximum: getrlimit(Resource::Memlock).maximum,
        };
        setrlimit(Resource::Memlock, limit).unwrap();
        let before = vm_lck_kb();
        let big = vec![1u8; 4 << 20];
        let lock = MemLock::new(&big);
        assert!(!lock.is_locked());
        assert_eq!(vm_lck_kb(), before, "a failed lock leaves nothing locked");
        assert!(unlocked_bytes() > 0);
        let key = Box::new([0u8; 32]);
        assert!(MemLock::new(&key[..]).is_locked());
    }
}
