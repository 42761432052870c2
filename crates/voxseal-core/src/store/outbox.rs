//! The outbox: one directory per sealed sample, waiting for upload.
//!
//! ```text
//! outbox/<sample-id>/raw.wav.age                 (absent in features-only mode)
//!                    features.safetensors.age
//!                    manifest.json               (no biometric content)
//!                    state.json                  (upload progress; rewritten atomically)
//! ```
//! Items are built in `outbox/.staging-<sample-id>/` and renamed into place only when every file
//! is complete and fsynced, so an item is either whole or absent; a crash leaves at most a
//! staging directory (ciphertext only), which [`Outbox::sweep_staging`] removes.
//!
//! Sealing holds a shared lock on `outbox/.sealing.lock` while its staging directory exists, and
//! the sweep takes it exclusively, so a second process opening the data directory (the CLI next
//! to the app, two windows) never removes a staging directory that is still being written.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::project::ids::SampleId;
use crate::project::manifest::{Manifest, PayloadKind};
use crate::store::fsutil;

const STAGING_PREFIX: &str = ".staging-";
/// Held shared by every seal in progress, exclusively by the staging sweep.
const SEAL_LOCK: &str = ".sealing.lock";
/// The manifest's file name in an item.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The state's file name in an item.
pub const STATE_FILE: &str = "state.json";

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Sealed, not yet uploaded.
    Sealed,
    /// An upload is under way (or was interrupted and will resume).
    Uploading,
    /// Every object is in the bucket; local ciphertext deleted.
    Uploaded,
    /// The last attempt failed; it will be retried.
    Failed,
}

impl std::fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sealed => "sealed",
            Self::Uploading => "uploading",
            Self::Uploaded => "uploaded",
            Self::Failed => "failed",
        })
    }
}

/// Upload progress of one object (a payload or the manifest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectState {
    /// The object key in the bucket.
    pub key: String,
    /// The server confirmed the object (its checksum matched ours, or it already existed).
    pub done: bool,
    /// The object was already stored by an earlier attempt (a 412 on `If-None-Match: *`).
    pub already_existed: bool,
    /// The checksum the server returned, base64: the payload's SHA-256 for a single request, the
    /// COMPOSITE of the part checksums (`...-N`) for a multipart upload.
    pub confirmed_checksum: Option<String>,
    /// What the server answered instead of our checksum (another checksum, or `none`) when it
    /// said it stored the object. The key may then hold other bytes, so a later `412` on it does
    /// not count as confirmation either: the local copy is kept until someone checks the bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfirmed: Option<String>,
    /// An unfinished multipart upload, if any.
    pub multipart: Option<MultipartState>,
}

/// A multipart upload in progress, so it can resume instead of starting over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipartState {
    /// The upload id from CreateMultipartUpload.
    pub upload_id: String,
    /// Bytes per part (the last may be shorter).
    pub part_size: u64,
    /// Parts the server acknowledged.
    pub parts: Vec<DonePart>,
}

/// One uploaded part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DonePart {
    /// 1-based part number.
    pub number: i32,
    /// The part's ETag.
    pub etag: String,
    /// The part's CRC32C, base64, as S3 acknowledged it.
    pub checksum: String,
}

/// `state.json`: mutable upload state of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemState {
    /// Where the item is.
    pub status: ItemStatus,
    /// Last change (RFC 3339 UTC).
    pub updated_at: String,
    /// Upload attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Per object (`raw`, `features`, `manifest`).
    #[serde(default)]
    pub objects: BTreeMap<String, ObjectState>,
}

impl ItemState {
    /// The state of a freshly sealed item.
    pub fn sealed() -> Self {
        Self {
            status: ItemStatus::Sealed,
            updated_at: crate::time::now_rfc3339(),
            attempts: 0,
            last_error: None,
            objects: BTreeMap::new(),
        }
    }
}

/// An item read from the outbox.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its upload state.
    pub state: ItemState,
}

impl OutboxItem {
    /// Path of a payload's ciphertext (which may already be deleted after upload).
    pub fn payload_path(&self, kind: PayloadKind) -> PathBuf {
        self.dir.join(kind.file_name())
    }

    /// Bytes of ciphertext still on disk.
    pub fn local_bytes(&self) -> u64 {
        self.manifest
            .payloads
            .iter()
            .filter_map(|p| fs::metadata(self.dir.join(&p.file)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Why the outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// File system error.
    #[error("outbox {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// An item's manifest or state is damaged.
    #[error("outbox item {path} is damaged: {detail}")]
    Damaged {
        /// The item.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// No such item.
    #[error("no outbox item {0}; run `voxseal outbox` to list them")]
    NotFound(String),
}

/// The outbox directory.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// The outbox at `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn seal_lock(&self) -> io::Result<fs::File> {
        let mut opts = fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(self.dir.join(SEAL_LOCK))
    }

    /// Starts building a new item (holding the seal lock shared until it is committed or dropped).
    pub fn staging(&self, id: &SampleId) -> Result<Staging, OutboxError> {
        let dir = self.dir.join(format!("{STAGING_PREFIX}{id}"));
        let io = |source| OutboxError::Io {
            path: dir.display().to_string(),
            source,
        };
        fsutil::create_private_dir(&self.dir).map_err(io)?;
        let lock = self.seal_lock().map_err(io)?;
        lock.lock_shared().map_err(io)?;
        fs::create_dir(&dir).map_err(io)?;
        Ok(Staging {
            dir,
            final_dir: self.dir.join(id.as_str()),
            committed: false,
            lock: Some(lock),
        })
    }

    /// Takes the seal lock exclusively, so no item is being sealed while the hold lives; `None`
    /// while another process (or thread) is sealing, or when there is no outbox yet.
    pub fn hold_still(&self) -> Result<Option<OutboxHeldStill>, OutboxError> {
        if !self.dir.is_dir() {
            return Ok(None);
        }
        let io = |source| OutboxError::Io {
            path: self.dir.join(SEAL_LOCK).display().to_string(),
            source,
        };
        let lock = self.seal_lock().map_err(io)?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(OutboxHeldStill { _lock: lock })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(source)) => Err(io(source)),
        }
    }

    /// Removes staging directories left by a crash (they hold ciphertext only); returns their
    /// names. The hold makes sure none of them is being written.
    pub fn sweep_staging(&self, _still: &OutboxHeldStill) -> Result<Vec<String>, OutboxError> {
        let mut removed = Vec::new();
        for entry in read_dir_if_exists(&self.dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(STAGING_PREFIX) {
                let path = entry.path();
                crate::store::wipe::wipe_tree(&path).map_err(|e| OutboxError::Io {
                    path: path.display().to_string(),
                    source: io::Error::other(e.to_string()),
                })?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Reads one item.
    pub fn get(&self, id: &SampleId) -> Result<OutboxItem, OutboxError> {
        let dir = self.dir.join(id.as_str());
        if !dir.is_dir() {
            return Err(OutboxError::NotFound(id.to_string()));
        }
        read_item(&dir)
    }

    /// All items, oldest first, and the items that could not be read (so one damaged item does
    /// not hide the others).
    pub fn list(&self) -> Result<(Vec<OutboxItem>, Vec<OutboxError>), OutboxError> {
        let mut ids: Vec<SampleId> = read_dir_if_exists(&self.dir)?
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        ids.sort();
        let mut items = Vec::new();
        let mut damaged = Vec::new();
        for id in ids {
            match read_item(&self.dir.join(id.as_str())) {
                Ok(item) => items.push(item),
                Err(e) => damaged.push(e),
            }
        }
        Ok((items, damaged))
    }

    /// Writes an item's state atomically.
    pub fn save_state(&self, item: &mut OutboxItem) -> Result<(), OutboxError> {
        item.state.updated_at = crate::time::now_rfc3339();
        let path = item.dir.join(STATE_FILE);
        fsutil::write_json_atomic(&path, &item.state).map_err(|source| OutboxError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

fn read_dir_if_exists(dir: &Path) -> Result<impl Iterator<Item = fs::DirEntry>, OutboxError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => Some(e),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(OutboxError::Io {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    Ok(entries.into_iter().flatten().filter_map(Result::ok))
}

fn read_item(dir: &Path) -> Result<OutboxItem, OutboxError> {
    let damaged = |detail: String| OutboxError::Damaged {
        path: dir.display().to_string(),
        detail,
    };
    let manifest =
        fs::read(dir.join(MANIFEST_FILE)).map_err(|e| damaged(format!("manifest.json: {e}")))?;
    let manifest = Manifest::from_json(&manifest).map_err(|e| damaged(e.to_string()))?;
    if dir.file_name().and_then(|n| n.to_str()) != Some(manifest.sample_id.as_str()) {
        return Err(damaged("its manifest is for another sample".into()));
    }
    let state = fs::read(dir.join(STATE_FILE)).map_err(|e| damaged(format!("state.json: {e}")))?;
    let state: ItemState =
        serde_json::from_slice(&state).map_err(|e| damaged(format!("state.json: {e}")))?;
    Ok(OutboxItem {
        dir: dir.to_owned(),
        manifest,
        state,
    })
}

/// An item being built; wiped on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    final_dir: PathBuf,
    committed: bool,
    /// The seal lock, held shared so no sweep removes this directory while it is written
    /// (handed to the [`CommittedItem`] on commit).
    lock: Option<fs::File>,
}

impl Staging {
    /// A path inside the staging directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fsyncs and renames the staging directory into place. The returned item still holds the
    /// seal lock, so no recovery takes it for a crash's leftover before the caller logs it.
    pub fn commit(mut self) -> Result<CommittedItem, OutboxError> {
        let io = |source| OutboxError::Io {
            path: self.final_dir.display().to_string(),
            source,
        };
        fsutil::fsync_dir(&self.dir).map_err(io)?;
        fs::rename(&self.dir, &self.final_dir).map_err(io)?;
        fsutil::fsync_dir(fsutil::parent_dir(&self.final_dir)).map_err(io)?;
        self.committed = true;
        Ok(CommittedItem {
            dir: self.final_dir.clone(),
            _lock: self.lock.take(),
        })
    }
}

/// An item just renamed into the outbox, the seal lock still held shared.
#[derive(Debug)]
pub struct CommittedItem {
    /// The item's directory.
    pub dir: PathBuf,
    _lock: Option<fs::File>,
}

/// The seal lock held exclusively (see [`Outbox::hold_still`]).
#[derive(Debug)]
pub struct OutboxHeldStill {
    _lock: fs::File,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = crate::store::wipe::wipe_tree(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_state_round_trips_and_refuses_unknown_fields() {
        let json = r#"{"upload_id": "u1", "part_size": 8388608,
            "parts": [{"number": 1, "etag": "\"e1\"", "checksum": "4waSgw=="}]}"#;
        let mp: MultipartState = serde_json::from_str(json).unwrap();
        assert_eq!(mp.parts[0].checksum, "4waSgw==");
        let back = serde_json::to_value(&mp).unwrap();
        assert_eq!(serde_json::from_value::<MultipartState>(back).unwrap(), mp);
        // The unreleased SHA-256 format is not read: its state is damage, not a resume.
        let old = json.replace("\"checksum\"", "\"checksum_sha256\"");
        assert!(serde_json::from_str::<MultipartState>(&old).is_err());
    }
}
