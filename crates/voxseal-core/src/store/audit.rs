//! The local audit log: append-only JSON lines, hash-chained.
//!
//! Each line is `{"seq":N,"time":"…","event":"…","details":{…},"prev":"<hex>","hash":"<hex>"}`
//! where `hash` is the SHA-256 of the line's own text without the `hash` member (the exact bytes
//! up to `,"hash"` followed by `}`) and `prev` is the previous line's `hash` (64 zeros for the first
//! line). [`verify`] therefore pinpoints the first edited, deleted, reordered, inserted or
//! duplicated line *within* the chain. The chain has no key, so on its own it cannot show lines
//! cut off at the end or a chain rewritten (re-hashed) from some line on: for that, every sealed
//! manifest records the head at sealing time ([`AuditAnchor`]), and [`check_anchor`] tells
//! whether the log still holds that line with that hash. Events after the newest sealed sample
//! are covered by the [`Checkpoint`] the uploader puts into the bucket after each drain, checked
//! by [`check_checkpoint`] (docs/format.md says what is detected with and without it). A crash in the middle of an append leaves a torn last line without a newline;
//! [`AuditLog::append`] cuts it off and records an `audit.recovered` event.
//!
//! Details must never hold secrets or audio: callers pass ids, sizes, hashes and verdicts only.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::project::manifest::AuditAnchor;
pub use crate::store::audit_event::{AuditEvent, LogEvent};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// One verified line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// 1 for the first line, then +1 per line.
    pub seq: u64,
    /// RFC 3339 UTC time of the event.
    pub time: String,
    /// Dotted event name, e.g. `take.sealed`.
    pub event: String,
    /// Event details: ids, sizes, hashes, verdicts; never secrets or audio.
    pub details: serde_json::Value,
    /// The previous line's hash.
    pub prev: String,
}

/// Why the audit log could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log file could not be opened, locked, read or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log's path.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The last complete line does not verify, so appending would extend a broken chain.
    #[error(
        "audit log {path} is damaged at line {line}: {reason}; run `voxseal audit verify` and keep a copy before repairing"
    )]
    Damaged {
        /// The log's path.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// An append-only, hash-chained audit log file, safe to share between processes: appends take an
/// exclusive file lock, readers a shared one. Locks end when the file closes, never by an explicit
/// unlock (Wine's UnlockFile fails where Windows' succeeds: docs/windows.md).
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// A log at `path`; the file is created on the first append.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event and fsyncs it; returns its sequence number. A torn last line left by a
    /// crash is cut off first and recorded as an `audit.recovered` event.
    pub fn append(&self, event: &impl LogEvent) -> Result<u64, AuditError> {
        let (name, details) = event.to_line_parts();
        self.append_line(&name, &details)
    }

    /// [`AuditLog::append`] of a line with any name and details (tests write odd ones).
    fn append_line(&self, event: &str, details: &serde_json::Value) -> Result<u64, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut f = open_private(&self.path).map_err(io)?;
        f.lock().map_err(io)?;
        let tail = read_tail(&mut f).map_err(io)?;
        let (mut seq, mut prev) = match &tail.last_line {
            None => (0, GENESIS.to_owned()),
            Some(line) => {
                // The hash is unkeyed, so a self-consistent last line can claim any `seq`; a
                // real chain never gets near u64::MAX, so leave room for two more entries
                // (`audit.recovered` and this one) or refuse it as damage (found by fuzzing).
                let last = parse_line(line).and_then(|(entry, hash)| match entry.seq {
                    s if s >= u64::MAX - 1 => Err(format!(
                        "its sequence number {s} leaves no room for another entry"
                    )),
                    s => Ok((s, hash)),
                });
                match last {
                    Ok(x) => x,
                    Err(reason) => {
                        // Rare: find the line number for the message, after letting go of the
                        // lock (`verify` takes a shared one).
                        drop(f);
                        let report = verify(&self.path).map_err(io)?;
                        let bad = report.first_bad.unwrap_or(BadLine { line: 0, reason });
                        return Err(AuditError::Damaged {
                            path: self.path.display().to_string(),
                            line: bad.line,
                            reason: bad.reason,
                        });
                    }
                }
            }
        };
        if tail.torn_bytes > 0 {
            f.set_len(tail.complete_len).map_err(io)?;
            let recovered = AuditEvent::AuditRecovered {
                torn_bytes: tail.torn_bytes,
            };
            let (name, details) = recovered.to_line_parts();
            let line = format_line(seq + 1, &name, &details, &prev);
            write_line(&mut f, &line).map_err(io)?;
            seq += 1;
            prev = line_hash(&line).to_owned();
        }
        let line = format_line(seq + 1, event, details, &prev);
        write_line(&mut f, &line).map_err(io)?;
        Ok(seq + 1)
    }

    /// The chain's head: the last complete line's `seq` and hash (`seq` 0 and 64 zeros for an
    /// empty or missing log). Sealing records it in the manifest as the audit anchor.
    pub fn head(&self) -> Result<AuditAnchor, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(AuditAnchor {
                    seq: 0,
                    hash: GENESIS.into(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        f.lock_shared().map_err(io)?;
        let tail = read_tail(&mut f).map_err(io)?;
        let Some(line) = tail.last_line else {
            return Ok(AuditAnchor {
                seq: 0,
                hash: GENESIS.into(),
            });
        };
        match parse_line(&line) {
            Ok((entry, hash)) => Ok(AuditAnchor {
                seq: entry.seq,
                hash,
            }),
            Err(reason) => {
                let report = verify(&self.path).map_err(io)?;
                let bad = report.first_bad.unwrap_or(BadLine { line: 0, reason });
                Err(AuditError::Damaged {
                    path: self.path.display().to_string(),
                    line: bad.line,
                    reason: bad.reason,
                })
            }
        }
    }

    /// Reads and verifies every entry (for display); fails at the first bad line.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        let report = verify(&self.path).map_err(|source| AuditError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        if let Some(bad) = report.first_bad {
            return Err(AuditError::Damaged {
                path: self.path.display().to_string(),
                line: bad.line,
                reason: bad.reason,
            });
        }
        Ok(report.entries)
    }
}

/// Opens (creating if needed) the log readable by its owner only; a log left readable by
/// others (copied in, or made by hand) is tightened.
fn open_private(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let f = opts.open(path)?;
        let mode = f.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
        }
        Ok(f)
    }
    #[cfg(not(unix))]
    opts.open(path)
}

fn write_line(f: &mut File, line: &str) -> io::Result<()> {
    f.seek(SeekFrom::End(0))?;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    if crate::fault::hit("audit.torn") {
        f.write_all(&buf[..buf.len() / 2])?;
        f.sync_data()?;
        crate::fault::abort("audit.torn");
    }
    f.write_all(&buf)?;
    f.sync_data()
}

struct Tail {
    last_line: Option<String>,
    complete_len: u64,
    torn_bytes: u64,
}

/// Finds the last complete line and any torn bytes after it, reading backwards from the end.
fn read_tail(f: &mut File) -> io::Result<Tail> {
    let len = f.seek(SeekFrom::End(0))?;
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        Read::take(&mut *f, len - start).read_to_end(&mut buf)?;
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok(Tail {
                    last_line: None,
                    complete_len: 0,
                    torn_bytes: len,
                });
            }
            window *= 2;
            continue;
        };
        let complete_len = start + last_nl as u64 + 1;
        let torn_bytes = len - complete_len;
        let before = &buf[..last_nl];
        match before.iter().rposition(|&b| b == b'\n') {
            Some(p) => {
                let line = String::from_utf8_lossy(&before[p + 1..]).into_owned();
                return Ok(Tail {
                    last_line: Some(line),
                    complete_len,
                    torn_bytes,
                });
            }
            None if start == 0 => {
                let line = String::from_utf8_lossy(before).into_owned();
                return Ok(Tail {
                    last_line: Some(line),
                    complete_len,
                    torn_bytes,
                });
            }
            None => window *= 2,
        }
    }
}

fn format_line(seq: u64, event: &str, details: &serde_json::Value, prev: &str) -> String {
    let entry = AuditEntry {
        seq,
        time: crate::time::now_rfc3339(),
        event: event.to_owned(),
        details: details.clone(),
        prev: prev.to_owned(),
    };
    let body = serde_json::to_string(&entry).expect("audit entries always serialize");
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1])
}

fn line_hash(line: &str) -> &str {
    &line[line.len() - 66..line.len() - 2]
}

/// Checks one line's own hash and parses it; returns the entry and its hash.
fn parse_line(line: &str) -> Result<(AuditEntry, String), String> {
    if line.len() < HASH_SUFFIX_LEN + 2 || !line.is_char_boundary(line.len() - HASH_SUFFIX_LEN) {
        return Err("not an audit line (too short or malformed)".into());
    }
    let (head, suffix) = line.split_at(line.len() - HASH_SUFFIX_LEN);
    let hash = suffix
        .strip_prefix(",\"hash\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("the line does not end with its hash")?;
    let body = format!("{head}}}");
    if hex::encode(Sha256::digest(body.as_bytes())) != hash {
        return Err("its hash does not match its content (the line was edited)".into());
    }
    let entry: AuditEntry = serde_json::from_str(&body)
        .map_err(|e| format!("its content is not a valid entry: {e}"))?;
    Ok((entry, hash.to_owned()))
}

/// The first problem [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong, for a human.
    pub reason: String,
}

/// The result of verifying a whole audit log.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Entries that verified, in order, up to the first bad line.
    pub entries: Vec<AuditEntry>,
    /// Each of those entries' line hash, in the same order.
    pub hashes: Vec<String>,
    /// The first bad line, if any.
    pub first_bad: Option<BadLine>,
    /// Bytes after the last newline (a write torn by a crash); the next append recovers them.
    pub torn_bytes: u64,
}

impl VerifyReport {
    /// True when every complete line verifies (a torn tail alone is not damage).
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Checks that the verified log in `report` still holds `anchor`'s line with its hash; says what
/// is wrong otherwise (lines cut off at the end, or the chain rewritten up to that line).
pub fn check_anchor(report: &VerifyReport, anchor: &AuditAnchor) -> Result<(), String> {
    check_held(report, anchor, |why| match why {
        Missing::Cut { ends_at, reason } => format!(
            "the log has {ends_at} intact events but a sealed manifest anchors event {}: {reason}",
            anchor.seq
        ),
        Missing::Other { held } => format!(
            "event {} has hash {held}…, but a sealed manifest recorded {}… for it: the log was rewritten up to that event",
            anchor.seq,
            short(&anchor.hash)
        ),
    })
}

/// Checks that the verified log in `report` still holds the event an uploaded [`Checkpoint`]
/// recorded, with the same hash: a log that ends before it was cut, one with another hash there
/// was rewritten.
pub fn check_checkpoint(report: &VerifyReport, cp: &Checkpoint) -> Result<(), String> {
    let anchor = AuditAnchor {
        seq: cp.seq,
        hash: cp.hash.clone(),
    };
    check_held(report, &anchor, |why| match why {
        Missing::Cut { ends_at, reason } => format!(
            "the log ends at event {ends_at} but the bucket holds a checkpoint at event {} (uploaded {}): {reason}",
            cp.seq,
            crate::project::ids::shown(&cp.time)
        ),
        Missing::Other { held } => format!(
            "event {} has hash {held}…, but the bucket's checkpoint (uploaded {}) recorded {}… for it: the log was rewritten up to that event",
            cp.seq,
            crate::project::ids::shown(&cp.time),
            short(&cp.hash)
        ),
    })
}

/// Why the log does not hold an anchored event.
enum Missing<'a> {
    /// It ends (or its chain breaks) before the event.
    Cut { ends_at: usize, reason: String },
    /// It has the event with another hash (its first 12 digits).
    Other { held: &'a str },
}

fn check_held(
    report: &VerifyReport,
    anchor: &AuditAnchor,
    message: impl FnOnce(Missing<'_>) -> String,
) -> Result<(), String> {
    if anchor.seq == 0 {
        return Ok(());
    }
    let Some(hash) = usize::try_from(anchor.seq - 1)
        .ok()
        .and_then(|i| report.hashes.get(i))
    else {
        let reason = match &report.first_bad {
            Some(bad) => format!("the chain breaks at line {} ({})", bad.line, bad.reason),
            None => "lines were deleted from its end".to_owned(),
        };
        return Err(message(Missing::Cut {
            ends_at: report.entries.len(),
            reason,
        }));
    };
    if !hash.eq_ignore_ascii_case(&anchor.hash) {
        return Err(message(Missing::Other { held: &hash[..12] }));
    }
    Ok(())
}

/// The first 12 digits of a hash, for messages (made safe to print: it comes from a file).
fn short(hash: &str) -> String {
    crate::project::ids::shown(hash.get(..12).unwrap_or(hash))
}

/// The schema identifier of an audit checkpoint.
pub const CHECKPOINT_SCHEMA: &str = "voxseal.audit-checkpoint/1";

/// How a checkpoint object's name ends. Not `.json`, so that readers of the bucket's
/// `manifests/` that take every `*.json` for a sample manifest pass it by.
pub const CHECKPOINT_SUFFIX: &str = ".checkpoint";

/// The audit log's head as uploaded after a drain, under the contractor's own `manifests/`
/// prefix with the upload session (`manifests/<c>/audit/<file_name>`). The laptop cannot delete or
/// overwrite it later, so a verifier holding it can tell whether the log was cut back before
/// `seq` or rewritten up to it. It has no signature: any key on the laptop is the attacker's
/// too; what proves who wrote it is the prefix only that contractor's credentials can write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_SCHEMA`].
    pub schema: String,
    /// Whose log it is (the prefix it is stored under names the same contractor).
    pub contractor: crate::project::ids::ContractorId,
    /// The head's sequence number, which is also the number of events up to it.
    pub seq: u64,
    /// The head line's hash (64 hex digits).
    pub hash: String,
    /// When it was made (RFC 3339 UTC, the laptop's clock).
    pub time: String,
    /// Voxseal's version.
    pub app_version: String,
}

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Not the JSON of a checkpoint.
    #[error("not an audit checkpoint: {0}")]
    Json(#[from] serde_json::Error),
    /// A schema this version does not know.
    #[error("unknown audit checkpoint schema {0:?} (this version reads {CHECKPOINT_SCHEMA})")]
    Schema(String),
    /// The hash is not 64 hex digits.
    #[error("the checkpoint's hash is not 64 hex digits")]
    Hash,
}

impl Checkpoint {
    /// A checkpoint of `head` (from [`AuditLog::head`]) of `contractor`'s log, made now.
    pub fn new(contractor: crate::project::ids::ContractorId, head: &AuditAnchor) -> Self {
        Self {
            schema: CHECKPOINT_SCHEMA.into(),
            contractor,
            seq: head.seq,
            hash: head.hash.clone(),
            time: crate::time::now_rfc3339(),
            app_version: crate::VERSION.into(),
        }
    }

    /// Its object name: `<seq, 12 digits>-<first 16 hex of hash>.checkpoint`, so names sort by
    /// `seq` and a name never stands for two heads.
    pub fn file_name(&self) -> String {
        format!(
            "{:012}-{}{CHECKPOINT_SUFFIX}",
            self.seq,
            self.hash.get(..16).unwrap_or(&self.hash)
        )
    }

    /// The JSON uploaded.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("checkpoints always serialize");
        v.push(b'\n');
        v
    }

    /// Reads one, refusing unknown schemas and malformed hashes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let cp: Self = serde_json::from_slice(bytes)?;
        if cp.schema != CHECKPOINT_SCHEMA {
            return Err(CheckpointError::Schema(cp.schema));
        }
        if cp.hash.len() != 64 || !cp.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CheckpointError::Hash);
        }
        Ok(cp)
    }
}

/// Verifies the chain of a whole log file. A missing file is an empty, intact log. Reads under a
/// shared lock, so it waits for an append in progress (on Windows, where locks are mandatory,
/// reading during one would fail).
pub fn verify(path: &Path) -> io::Result<VerifyReport> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(VerifyReport::default()),
        Err(e) => return Err(e),
    };
    f.lock_shared()?;
    verify_reader(BufReader::new(f))
}

/// Verifies the chain of a log read from `r`.
pub fn verify_reader(mut r: impl BufRead) -> io::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut prev_hash = GENESIS.to_owned();
    let mut prev_seq = 0u64;
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            report.torn_bytes = n as u64;
            break;
        }
        line_no += 1;
        let bad = |reason: String| {
            Some(BadLine {
                line: line_no,
                reason,
            })
        };
        let Ok(line) = std::str::from_utf8(&buf[..buf.len() - 1]) else {
            report.first_bad = bad("not valid UTF-8 (bytes were changed)".into());
            break;
        };
        let (entry, hash) = match parse_line(line) {
            Ok(x) => x,
            Err(reason) => {
                report.first_bad = bad(reason);
                break;
            }
        };
        if entry.seq != prev_seq + 1 {
            let why = if entry.seq <= prev_seq {
                "a line is duplicated or lines were reordered"
            } else {
                "a line before it was deleted or lines were reordered"
            };
            report.first_bad = bad(format!("sequence {} follows {prev_seq}: {why}", entry.seq));
            break;
        }
        if entry.prev != prev_hash {
            report.first_bad =
                bad("its prev hash does not match the line before it (a line was replaced)".into());
            break;
        }
        prev_seq = entry.seq;
        prev_hash = hash.clone();
        report.entries.push(entry);
        report.hashes.push(hash);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;

    #[cfg(unix)]
    #[test]
    fn the_log_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, log) = log_with(1);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(log.path()), 0o600);
        // One left readable by others is tightened on the next append.
        fs::set_permissions(log.path(), fs::Permissions::from_mode(0o644)).unwrap();
        log.append_line("test.event", &json!({})).unwrap();
        assert_eq!(mode(log.path()), 0o600);
    }

    fn log_with(n: u64) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.log"));
        for i in 0..n {
            assert_eq!(
                log.append_line("test.event", &json!({"i": i})).unwrap(),
                i + 1
            );
        }
        (dir, log)
    }

    fn lines(log: &AuditLog) -> Vec<String> {
        fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(log: &AuditLog, lines: &[String]) {
        let mut s = lines.join("\n");
        s.push('\n');
        fs::write(log.path(), s).unwrap();
    }

    fn first_bad(log: &AuditLog) -> BadLine {
        verify(log.path())
            .unwrap()
            .first_bad
            .expect("damage must be found")
    }

    /// Issue 12 finding 14: a cut end or a re-hashed chain verifies on its own; the anchor
    /// (the head a sealed manifest recorded) catches both.
    #[test]
    fn anchors_catch_a_cut_end_and_a_rewritten_chain() {
        let (_d, log) = log_with(3);
        let anchor = log.head().unwrap();
        assert_eq!(anchor.seq, 3);
        log.append_line("after", &json!({})).unwrap();
        let report = verify(log.path()).unwrap();
        check_anchor(&report, &anchor).unwrap();
        assert_eq!(report.hashes.len(), 4);

        let orig = lines(&log);
        write_lines(&log, &orig[..2]);
        let report = verify(log.path()).unwrap();
        assert!(report.is_intact());
        let err = check_anchor(&report, &anchor).unwrap_err();
        assert!(err.contains("deleted from its end"), "{err}");

        // Rewritten from line 2 on, every hash recomputed.
        let (_d2, forged) = log_with(0);
        forged.append_line("test.event", &json!({"i": 0})).unwrap();
        for i in 1..4 {
            forged
                .append_line("test.event", &json!({"i": i * 10}))
                .unwrap();
        }
        let report = verify(forged.path()).unwrap();
        assert!(report.is_intact());
        let err = check_anchor(&report, &anchor).unwrap_err();
        assert!(err.contains("rewritten"), "{err}");
        check_anchor(
            &report,
            &AuditAnchor {
                seq: 0,
                hash: GENESIS.into(),
            },
        )
        .unwrap();
    }

    /// Issue 12 finding 14, remaining part: an uploaded checkpoint catches a log cut back
    /// before it and a chain rewritten (re-hashed) up to it; an intact log passes.
    #[test]
    fn checkpoints_catch_a_cut_end_and_a_rewritten_chain() {
        let (_d, log) = log_with(5);
        let cp = Checkpoint::new("alice-01".parse().unwrap(), &log.head().unwrap());
        assert_eq!((cp.seq, cp.file_name().len()), (5, 12 + 1 + 16 + 11));
        assert!(
            cp.file_name().starts_with("000000000005-"),
            "{}",
            cp.file_name()
        );
        let cp = Checkpoint::from_json(&cp.to_json()).unwrap();
        log.append_line("after", &json!({})).unwrap();
        check_checkpoint(&verify(log.path()).unwrap(), &cp).unwrap();

        let orig = lines(&log);
        write_lines(&log, &orig[..4]);
        let report = verify(log.path()).unwrap();
        assert!(report.is_intact());
        let err = check_checkpoint(&report, &cp).unwrap_err();
        assert!(
            err.contains("the log ends at event 4 but the bucket holds a checkpoint at event 5")
                && err.contains("deleted from its end"),
            "{err}"
        );

        // The same number of events, every hash recomputed after an edit of event 2.
        let (_d2, forged) = log_with(1);
        for i in 1..6 {
            forged
                .append_line("test.event", &json!({"i": i * 10}))
                .unwrap();
        }
        let report = verify(forged.path()).unwrap();
        assert!(report.is_intact() && report.entries.len() == 6);
        let err = check_checkpoint(&report, &cp).unwrap_err();
        assert!(
            err.contains("event 5 has hash") && err.contains("rewritten"),
            "{err}"
        );

        // A chain broken before the checkpoint says where.
        let mut broken = orig.clone();
        broken[1] = broken[1].replace("test.event", "test.evenx");
        write_lines(&log, &broken);
        let err = check_checkpoint(&verify(log.path()).unwrap(), &cp).unwrap_err();
        assert!(err.contains("chain breaks at line 2"), "{err}");
    }

    #[test]
    fn a_checkpoint_of_another_schema_or_hash_is_refused() {
        let cp = Checkpoint::new(
            "alice-01".parse().unwrap(),
            &AuditAnchor {
                seq: 3,
                hash: "ab".repeat(32),
            },
        );
        let mut v: serde_json::Value = serde_json::from_slice(&cp.to_json()).unwrap();
        v["schema"] = json!("voxseal.audit-checkpoint/9");
        let err = Checkpoint::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, CheckpointError::Schema(_)), "{err}");
        let mut v: serde_json::Value = serde_json::from_slice(&cp.to_json()).unwrap();
        v["hash"] = json!("zz");
        let err = Checkpoint::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, CheckpointError::Hash), "{err}");
        // A sample manifest is not a checkpoint.
        let err = Checkpoint::from_json(br#"{"schema":"voxseal.manifest/2"}"#).unwrap_err();
        assert!(matches!(err, CheckpointError::Json(_)), "{err}");
    }

    #[test]
    fn a_fresh_log_verifies() {
        let (_d, log) = log_with(5);
        let r = verify(log.path()).unwrap();
        assert!(r.is_intact());
        assert_eq!(r.entries.len(), 5);
        assert_eq!(r.entries[4].details, json!({"i": 4}));
        assert_eq!(log.entries().unwrap().len(), 5);
    }

    #[test]
    fn every_flipped_byte_is_found_at_its_line() {
        let (_d, log) = log_with(4);
        let original = fs::read(log.path()).unwrap();
        let line_of =
            |pos: usize| original[..pos].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        for pos in 0..original.len() {
            if original[pos] == b'\n' {
                continue;
            }
            let mut bytes = original.clone();
            bytes[pos] ^= 0x01;
            fs::write(log.path(), &bytes).unwrap();
            let bad = first_bad(&log);
            assert_eq!(bad.line, line_of(pos), "byte {pos}: {bad:?}");
        }
    }

    #[test]
    fn deleted_reordered_duplicated_lines() {
        let (_d, log) = log_with(5);
        let orig = lines(&log);

        let mut deleted = orig.clone();
        deleted.remove(2);
        write_lines(&log, &deleted);
        let bad = first_bad(&log);
        assert_eq!(bad.line, 3);
        assert!(bad.reason.contains("deleted"), "{}", bad.reason);

        let mut swapped = orig.clone();
        swapped.swap(1, 2);
        write_lines(&log, &swapped);
        assert_eq!(first_bad(&log).line, 2);

        let mut dup = orig.clone();
        dup.insert(3, orig[2].clone());
        write_lines(&log, &dup);
        let bad = first_bad(&log);
        assert_eq!(bad.line, 4);
        assert!(bad.reason.contains("duplicated"), "{}", bad.reason);

        let mut first_gone = orig.clone();
        first_gone.remove(0);
        write_lines(&log, &first_gone);
        assert_eq!(first_bad(&log).line, 1);
    }

    #[test]
    fn a_line_from_another_log_does_not_fit() {
        let (_d, log) = log_with(3);
        // Another log with other events: written in the same second, the same events would make
        // identical lines, and an identical line fits anywhere.
        let d2 = tempfile::tempdir().unwrap();
        let other = AuditLog::new(d2.path().join("audit.log"));
        for i in 0..3 {
            other.append_line("other.event", &json!({"i": i})).unwrap();
        }
        let mut mixed = lines(&log);
        mixed[1] = lines(&other)[1].clone();
        write_lines(&log, &mixed);
        assert_eq!(first_bad(&log).line, 2);
    }

    #[test]
    fn torn_last_line_is_reported_then_recovered_with_an_event() {
        let (_d, log) = log_with(3);
        let mut bytes = fs::read(log.path()).unwrap();
        bytes.extend_from_slice(b"{\"seq\":4,\"time\":\"2026-");
        fs::write(log.path(), &bytes).unwrap();
        let r = verify(log.path()).unwrap();
        assert!(r.is_intact());
        assert_eq!(r.torn_bytes, 22);
        assert_eq!(r.entries.len(), 3);

        assert_eq!(log.append_line("after.crash", &json!({})).unwrap(), 5);
        let r = verify(log.path()).unwrap();
        assert!(r.is_intact(), "{:?}", r.first_bad);
        assert_eq!(r.torn_bytes, 0);
        assert_eq!(r.entries[3].event, "audit.recovered");
        assert_eq!(r.entries[3].details["torn_bytes"], 22);
        assert_eq!(r.entries[4].event, "after.crash");
    }

    #[test]
    fn appending_to_a_damaged_log_is_refused() {
        let (_d, log) = log_with(2);
        let mut l = lines(&log);
        l[1] = l[1].replace("test.event", "test.evenx");
        write_lines(&log, &l);
        let err = log.append_line("x", &json!({})).unwrap_err();
        assert!(matches!(err, AuditError::Damaged { .. }), "{err}");
    }

    #[test]
    fn concurrent_appends_from_threads_keep_the_chain() {
        let (_d, log) = log_with(0);
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = log.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        log.append_line("t", &json!({"t": t, "i": i})).unwrap();
                    }
                });
            }
        });
        let r = verify(log.path()).unwrap();
        assert!(r.is_intact(), "{:?}", r.first_bad);
        assert_eq!(r.entries.len(), 100);
    }

    #[test]
    fn long_lines_are_found_by_the_tail_reader() {
        let (_d, log) = log_with(1);
        let big = "x".repeat(200_000);
        log.append_line("big", &json!({ "note": big })).unwrap();
        log.append_line("after", &json!({})).unwrap();
        assert_eq!(log.append_line("again", &json!({})).unwrap(), 4);
        assert!(verify(log.path()).unwrap().is_intact());
    }

    /// Found by the `audit_line` fuzz target: a last line with a valid hash and `seq` near
    /// u64::MAX made `append` overflow (a panic in debug builds, a wrapped seq 0 in release).
    #[test]
    fn a_last_line_claiming_the_largest_seq_is_refused_not_overflowed() {
        let (_d, log) = log_with(0);
        for (seq, torn) in [(u64::MAX, ""), (u64::MAX - 1, "{\"seq\"")] {
            let line = format_line(seq, "forged", &json!({}), GENESIS);
            let bytes = format!("{line}\n{torn}");
            fs::write(log.path(), &bytes).unwrap();
            let err = log.append_line("x", &json!({})).unwrap_err();
            assert!(matches!(err, AuditError::Damaged { line: 1, .. }), "{err}");
            assert_eq!(
                fs::read_to_string(log.path()).unwrap(),
                bytes,
                "file unchanged"
            );
        }
        // With room for both entries, the append goes ahead (the chain was already broken at
        // line 1, and verify still says so).
        let line = format_line(u64::MAX - 2, "forged", &json!({}), GENESIS);
        fs::write(log.path(), format!("{line}\n{{\"seq\"")).unwrap();
        assert_eq!(log.append_line("x", &json!({})).unwrap(), u64::MAX);
        assert_eq!(first_bad(&log).line, 1);
    }
}
