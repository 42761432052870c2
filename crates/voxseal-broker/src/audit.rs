//! The broker's audit log: [`voxseal_core::store::audit`]'s hash-chained log with a size cap, and
//! requests refused by the per-address limit counted instead of written.
//!
//! - Rotation: before an append that finds the file at or over `max_bytes`, the file becomes
//!   `<log>.1` (the older ones shift to `.2` … `.<keep>`; the oldest is deleted), and the new file
//!   opens with an `audit.rotated` line naming the previous file's last sequence number and hash.
//!   Each file verifies on its own (`voxseal audit verify --file`); the `audit.rotated` line links
//!   them. The log therefore takes at most about `(keep + 1) * max_bytes` of disk.
//! - Aggregation: a request refused because its address's bucket is empty costs no audit line;
//!   it is counted per address, and [`BrokerAudit::flush_limited`] writes one
//!   `broker.refusals.limited` line per address and window with the count (at most
//!   [`MAX_WINDOW_ADDRESSES`] addresses; the rest are summed into one line without an address).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};
use time::OffsetDateTime;
use voxseal_core::store::audit::{AuditError, AuditLog, LogEvent};

/// Audit event: the log was rotated; the first line of every file after the first.
pub const EVENT_AUDIT_ROTATED: &str = "audit.rotated";
/// Audit event: requests refused unread because their address's bucket was empty.
pub const EVENT_REFUSALS_LIMITED: &str = "broker.refusals.limited";
/// Addresses counted separately in one window; beyond that they share one line.
pub const MAX_WINDOW_ADDRESSES: usize = 1024;

/// A broker event: one of the `EVENT_*` names here and in `app`, and its details.
struct BrokerEvent<'a>(&'a str, Value);

impl LogEvent for BrokerEvent<'_> {
    fn to_line_parts(&self) -> (String, Value) {
        (self.0.to_owned(), self.1.clone())
    }
}

/// The rotating, aggregating audit log (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct BrokerAudit {
    log: AuditLog,
    max_bytes: u64,
    keep: u32,
    rotation: Mutex<()>,
    limited: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: OffsetDateTime,
    by_address: HashMap<IpAddr, u64>,
    others: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            start: OffsetDateTime::now_utc(),
            by_address: HashMap::new(),
            others: 0,
        }
    }
}

impl BrokerAudit {
    /// A log at `path`, rotated at `max_bytes`, keeping `keep` (at least 1) rotated files.
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Self {
        Self {
            log: AuditLog::new(path),
            max_bytes,
            keep: keep.max(1),
            rotation: Mutex::new(()),
            limited: Mutex::new(Window::new()),
        }
    }

    /// The current file's path.
    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// Appends one event (fsynced), rotating first when the file is full. Blocking.
    pub fn append(&self, event: &str, details: Value) -> Result<u64, AuditError> {
        let _one_writer = self.rotation.lock().unwrap_or_else(|e| e.into_inner());
        let len = match std::fs::metadata(self.path()) {
            Ok(m) => m.len(),
            Err(_) => 0, // missing (created by the append) or unreadable (the append reports it)
        };
        if len >= self.max_bytes {
            self.rotate().map_err(|source| AuditError::Io {
                path: self.path().display().to_string(),
                source,
            })?;
        }
        self.log.append(&BrokerEvent(event, details))
    }

    /// Counts one request refused by the per-address limit.
    pub fn count_limited(&self, address: IpAddr) {
        let mut w = self.limited.lock().unwrap_or_else(|e| e.into_inner());
        let known = w.by_address.len();
        match w.by_address.get_mut(&address) {
            Some(n) => *n += 1,
            None if known < MAX_WINDOW_ADDRESSES => {
                w.by_address.insert(address, 1);
            }
            None => w.others += 1,
        }
    }

    /// Writes the counts since the last flush, one line per address (blocking), and starts a new
    /// window. Returns the lines written.
    pub fn flush_limited(&self) -> Result<usize, AuditError> {
        let w = std::mem::replace(
            &mut *self.limited.lock().unwrap_or_else(|e| e.into_inner()),
            Window::new(),
        );
        let (from, to) = (
            voxseal_core::time::format_rfc3339(w.start),
            voxseal_core::time::format_rfc3339(OffsetDateTime::now_utc()),
        );
        let mut lines: Vec<(Option<String>, u64)> = w
            .by_address
            .into_iter()
            .map(|(a, n)| (Some(a.to_string()), n))
            .collect();
        lines.sort();
        if w.others > 0 {
            lines.push((None, w.others));
        }
        for (address, count) in &lines {
            self.append(
                EVENT_REFUSALS_LIMITED,
                json!({
                    "outcome": "address_limited",
                    "source_ip": address,
                    "count": count,
                    "from": from,
                    "to": to,
                }),
            )?;
        }
        Ok(lines.len())
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path().as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shifts `.1`… up by one (dropping the oldest), renames the log to `.1` and opens the new
    /// file with a line that links it to the old one.
    fn rotate(&self) -> io::Result<()> {
        let (last_seq, last_hash) = last_line_link(self.path())?;
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        ignore_missing(std::fs::remove_file(self.rotated(self.keep)))?;
        for n in (1..self.keep).rev() {
            ignore_missing(std::fs::rename(self.rotated(n), self.rotated(n + 1)))?;
        }
        std::fs::rename(self.path(), self.rotated(1))?;
        voxseal_core::store::fsutil::fsync_dir(voxseal_core::store::fsutil::parent_dir(
            self.path(),
        ))?;
        let previous = self
            .rotated(1)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        self.log
            .append(&BrokerEvent(
                EVENT_AUDIT_ROTATED,
                json!({
                    "previous_file": previous,
                    "previous_last_seq": last_seq,
                    "previous_last_hash": last_hash,
                    "max_bytes": self.max_bytes,
                }),
            ))
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(())
    }
}

/// The last complete line's `seq` and `hash` (the line ends with `,"hash":"<64 hex>"}`).
fn last_line_link(path: &Path) -> io::Result<(Option<u64>, Option<String>)> {
    let mut f = File::open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let Some(line) = text
        .trim_end_matches(|c| c != '\n')
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .filter(|l| !l.is_empty())
    else {
        return Ok((None, None));
    };
    let v: Option<Value> = serde_json::from_str(line).ok();
    Ok((
        v.as_ref().and_then(|v| v["seq"].as_u64()),
        v.and_then(|v| v["hash"].as_str().map(str::to_owned)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxseal_core::store::audit::verify;

    #[test]
    fn rotation_caps_the_files_and_links_them() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("broker-audit.log");
        let audit = BrokerAudit::new(path.clone(), 2000, 2);
        for i in 0..100 {
            audit.append("test.event", json!({ "i": i })).unwrap();
        }
        let mut total = 0;
        for p in [path.clone(), audit.rotated(1), audit.rotated(2)] {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len < 2000 + 400, "{}: {len}", p.display());
            total += len;
            let r = verify(&p).unwrap();
            assert!(r.is_intact(), "{}: {:?}", p.display(), r.first_bad);
        }
        assert!(!audit.rotated(3).exists());
        assert!(total < 3 * 2400, "{total}");
        // The current file opens with a link to the last line of `.1`.
        let first = &verify(&path).unwrap().entries[0];
        assert_eq!(first.event, EVENT_AUDIT_ROTATED);
        let older = verify(&audit.rotated(1)).unwrap().entries;
        let last = older.last().unwrap();
        assert_eq!(first.details["previous_last_seq"], last.seq);
        assert_eq!(first.details["previous_file"], "broker-audit.log.1");
        let (_, hash) = last_line_link(&audit.rotated(1)).unwrap();
        assert_eq!(first.details["previous_last_hash"], hash.unwrap());
    }

    #[test]
    fn limited_refusals_become_one_line_per_address() {
        let d = tempfile::tempdir().unwrap();
        let audit = BrokerAudit::new(d.path().join("a.log"), 1 << 20, 1);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..500 {
            audit.count_limited(a);
        }
        audit.count_limited(b);
        assert_eq!(audit.flush_limited().unwrap(), 2);
        assert_eq!(audit.flush_limited().unwrap(), 0, "a new window");
        for i in 0..(MAX_WINDOW_ADDRESSES as u32 + 10) {
            audit.count_limited(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(audit.flush_limited().unwrap(), MAX_WINDOW_ADDRESSES + 1);
        let entries = AuditLog::new(audit.path()).entries().unwrap();
        assert_eq!(entries[0].details["source_ip"], "10.0.0.1");
        assert_eq!(entries[0].details["count"], 500);
        assert_eq!(entries[1].details["count"], 1);
        let last = entries.last().unwrap();
        assert_eq!(last.details["source_ip"], Value::Null);
        assert_eq!(last.details["count"], 10);
    }
}
