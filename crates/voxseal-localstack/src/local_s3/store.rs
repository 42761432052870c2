//! The store on disk: s3s-fs files plus sidecars (SSE, checksums, ETags), per-key write locks, parts and their completion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use futures_core::Stream;
use s3s::crypto::Checksum as _;
use s3s::dto::{ChecksumMode, ServerSideEncryption, StreamingBlob};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::OwnedMutexGuard;

use super::auth::*;
use super::checksums::*;
use super::server::*;

/// Async mutexes by name, created on demand and dropped when nobody holds or waits for them.
#[derive(Default)]
pub(super) struct KeyLocks {
    pub(super) map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub(super) struct KeyGuard<'a> {
    pub(super) locks: &'a KeyLocks,
    pub(super) name: String,
    pub(super) lock: Arc<tokio::sync::Mutex<()>>,
    pub(super) guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    pub(super) async fn lock(&self, name: String) -> KeyGuard<'_> {
        let lock = Arc::clone(
            self.map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(name.clone())
                .or_default(),
        );
        let guard = Arc::clone(&lock).lock_owned().await;
        KeyGuard {
            locks: self,
            name,
            lock,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self
            .locks
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Ours and the map's: nobody else holds or waits for it.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sidecars

/// What s3s-fs does not keep about an object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) kms_key_id: Option<String>,
    /// COMPOSITE checksums of a multipart object (s3s-fs keeps full-object ones itself).
    #[serde(default, skip_serializing_if = "Checksums::is_empty")]
    pub(super) composite: Checksums,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) checksum_type: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UploadMeta {
    pub(super) bucket: String,
    pub(super) key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) checksum_algorithm: Option<String>,
}

/// One acknowledged part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PartMeta {
    pub(super) size: u64,
    pub(super) checksums: Checksums,
    /// The ETag the part was acknowledged with (unquoted).
    pub(super) e_tag: String,
}

/// Whether objects written with this SSE algorithm get opaque ETags: on S3 the ETag of an SSE-KMS
/// object is not the MD5 of its data, so the endpoint does not compute one.
pub(super) fn opaque_e_tags(sse: Option<&str>) -> bool {
    matches!(
        sse,
        Some(ServerSideEncryption::AWS_KMS | ServerSideEncryption::AWS_KMS_DSSE)
    )
}

/// An opaque ETag: 128 random bits in hex, the shape S3's own take.
pub(super) fn opaque_e_tag() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator failed");
    hex::encode(bytes)
}

/// A multipart object's ETag: the MD5 of the concatenated binary part MD5s, then `-<parts>`, as
/// S3 and s3s-fs compute it. None if a part's ETag is not an MD5.
pub(super) fn multipart_md5_e_tag(part_e_tags: &[&str]) -> Option<String> {
    let mut outer = s3s::crypto::Md5::new();
    for e_tag in part_e_tags {
        let md5 = hex::decode(e_tag).ok().filter(|m| m.len() == 16)?;
        outer.update(&md5);
    }
    Some(format!(
        "{}-{}",
        hex::encode(outer.finalize()),
        part_e_tags.len()
    ))
}

/// How much of a part the endpoint buffers before writing it out.
pub(super) const PART_WRITE_BUFFER: usize = 4 << 20;

pub(super) fn internal(err: impl std::fmt::Display) -> S3Error {
    tracing::warn!(%err, "local S3 endpoint: internal error");
    s3_error!(InternalError, "local store: {err}")
}

pub(super) fn not_found(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::NotFound
}

// ---------------------------------------------------------------------------------------------
// The S3 implementation: s3s-fs plus the fixes listed in the module docs.

pub(super) struct DiskStore {
    pub(super) fs: s3s_fs::FileSystem,
    pub(super) root: PathBuf,
    pub(super) meta: PathBuf,
    pub(super) locks: KeyLocks,
    pub(super) tmp_counter: AtomicU64,
}

pub(super) fn sse_of(sse: Option<&ServerSideEncryption>) -> Option<String> {
    sse.map(|s| s.as_str().to_owned())
}

/// S3's rules for the SSE request headers.
pub(super) fn check_sse_request(
    sse: Option<&ServerSideEncryption>,
    kms_key_id: Option<&String>,
) -> S3Result<()> {
    match sse.map(ServerSideEncryption::as_str) {
        None | Some(ServerSideEncryption::AWS_KMS | ServerSideEncryption::AWS_KMS_DSSE) => {}
        Some(ServerSideEncryption::AES256) if kms_key_id.is_none() => {}
        Some(ServerSideEncryption::AES256) => {
            return Err(s3_error!(
                InvalidArgument,
                "{SSE_KMS_KEY_HEADER} is only valid with aws:kms"
            ));
        }
        Some(other) => return Err(s3_error!(InvalidArgument, "unknown {SSE_HEADER}: {other}")),
    }
    if kms_key_id.is_some() && sse.is_none() {
        return Err(s3_error!(
            InvalidArgument,
            "{SSE_KMS_KEY_HEADER} requires {SSE_HEADER}: aws:kms"
        ));
    }
    Ok(())
}

pub(super) fn checksum_mode_enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
}

pub(super) fn valid_upload_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl DiskStore {
    pub(super) async fn open(root: &Path) -> Result<DiskStore, LocalS3Error> {
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| LocalS3Error::DiskStore(format!("{e:?}")))?;
        let meta = root.join(".voxseal");
        for dir in [meta.join("objects"), meta.join("uploads")] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_err(&dir))?;
        }
        Ok(DiskStore {
            fs,
            root: root.to_owned(),
            meta,
            locks: KeyLocks::default(),
            tmp_counter: AtomicU64::new(0),
        })
    }

    pub(super) fn object_lock_name(bucket: &str, key: &str) -> String {
        format!("o\0{bucket}\0{key}")
    }

    pub(super) fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    pub(super) fn object_meta_path(&self, bucket: &str, key: &str) -> PathBuf {
        let mut h = sha2::Sha256::new();
        h.update(bucket.as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        self.meta
            .join("objects")
            .join(format!("{}.json", hex::encode(h.finalize())))
    }

    pub(super) fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.meta.join("uploads").join(upload_id)
    }

    pub(super) async fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> S3Result<()> {
        let bytes = serde_json::to_vec(value).map_err(internal)?;
        let dir = path
            .parent()
            .ok_or_else(|| internal("sidecar path has no parent"))?;
        tokio::fs::create_dir_all(dir).await.map_err(internal)?;
        let tmp = dir.join(format!(
            ".tmp-{}",
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        tokio::fs::write(&tmp, bytes).await.map_err(internal)?;
        tokio::fs::rename(&tmp, path).await.map_err(internal)
    }

    pub(super) async fn read_json<T: for<'de> Deserialize<'de>>(
        path: &Path,
    ) -> S3Result<Option<T>> {
        match tokio::fs::read(path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(internal),
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(internal(err)),
        }
    }

    pub(super) async fn remove_file(path: &Path) -> S3Result<()> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(err) if not_found(&err) => Ok(()),
            Err(err) => Err(internal(err)),
        }
    }

    pub(super) async fn object_meta(&self, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
        Ok(Self::read_json(&self.object_meta_path(bucket, key))
            .await?
            .unwrap_or_default())
    }

    pub(super) async fn set_object_meta(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
    ) -> S3Result<()> {
        let path = self.object_meta_path(bucket, key);
        if meta.sse.is_none()
            && meta.kms_key_id.is_none()
            && meta.composite.is_empty()
            && meta.checksum_type.is_none()
        {
            Self::remove_file(&path).await
        } else {
            self.write_json(&path, meta).await
        }
    }

    /// The upload, checked against the request's bucket and key.
    pub(super) async fn upload(
        &self,
        upload_id: &str,
        bucket: &str,
        key: &str,
    ) -> S3Result<UploadMeta> {
        let missing = || s3_error!(NoSuchUpload, "The specified upload does not exist.");
        if !valid_upload_id(upload_id) {
            return Err(missing());
        }
        let meta: UploadMeta = Self::read_json(&self.upload_dir(upload_id).join("upload.json"))
            .await?
            .ok_or_else(missing)?;
        if meta.bucket != bucket || meta.key != key {
            return Err(missing());
        }
        Ok(meta)
    }

    pub(super) async fn part(
        &self,
        upload_id: &str,
        part_number: i32,
    ) -> S3Result<Option<PartMeta>> {
        Self::read_json(
            &self
                .upload_dir(upload_id)
                .join(format!("part-{part_number}.json")),
        )
        .await
    }

    // s3s-fs's own files, for the multipart steps this endpoint does itself (module docs). The
    // names are those of s3s-fs 0.14.1, pinned in Cargo.toml; the multipart tests read objects
    // back through s3s-fs, so a change of layout fails them.

    /// A temporary file in the store's root, named so that s3s-fs removes it at start-up if a
    /// crash left it.
    pub(super) fn temp_path(&self) -> PathBuf {
        self.root.join(format!(
            ".tmp.voxseal-{}.internal.part",
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        ))
    }

    pub(super) fn fs_part_path(&self, upload_id: &str, part_number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{part_number}"))
    }

    pub(super) fn fs_upload_info_path(&self, upload_id: &str) -> PathBuf {
        self.root.join(format!(".upload-{upload_id}.json"))
    }

    /// s3s-fs's per-object files: `.bucket-<b>.object-<k><suffix>` with URL-safe base64 names.
    pub(super) fn fs_object_file(&self, bucket: &str, key: &str, suffix: &str) -> PathBuf {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        self.root.join(format!(
            ".bucket-{}.object-{}{suffix}",
            URL_SAFE_NO_PAD.encode(bucket),
            URL_SAFE_NO_PAD.encode(key)
        ))
    }

    /// Streams a verified part body to its s3s-fs part file (through a temporary file, so a
    /// failed or refused body leaves the earlier part, if any, in place). Returns the checksums
    /// computed and the length.
    pub(super) async fn write_part(
        &self,
        upload_id: &str,
        part_number: i32,
        mut body: StreamingBlob,
        verdict: &VerdictSlot,
    ) -> S3Result<(Checksums, u64)> {
        use tokio::io::AsyncWriteExt as _;
        let tmp = self.temp_path();
        let written = async {
            let file = tokio::fs::File::create(&tmp).await.map_err(internal)?;
            let mut out = tokio::io::BufWriter::with_capacity(PART_WRITE_BUFFER, file);
            while let Some(chunk) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await
            {
                match chunk {
                    Ok(bytes) => out.write_all(&bytes).await.map_err(internal)?,
                    Err(err) => {
                        return Err(match take_verdict(verdict) {
                            Some(Verdict::Mismatch(message)) => {
                                S3Error::with_message(S3ErrorCode::BadDigest, message)
                            }
                            _ => s3_error!(IncompleteBody, "the part's body ended early: {err}"),
                        });
                    }
                }
            }
            out.flush().await.map_err(internal)?;
            match take_verdict(verdict) {
                Some(Verdict::Verified(checksums, size)) => Ok((checksums, size)),
                Some(Verdict::Mismatch(message)) => {
                    Err(S3Error::with_message(S3ErrorCode::BadDigest, message))
                }
                None => Err(internal("a part's body ended without a verdict")),
            }
        }
        .await;
        match written {
            Ok(done) => {
                tokio::fs::rename(&tmp, self.fs_part_path(upload_id, part_number))
                    .await
                    .map_err(internal)?;
                Ok(done)
            }
            Err(err) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(err)
            }
        }
    }

    /// Completes a multipart upload whose parts all have recorded ETags: concatenates the part
    /// files into the object in the kernel (`copy_file_range`, no pass through user space),
    /// stores the ETag where s3s-fs serves it from, moves the upload's attributes (content type,
    /// user metadata) to the object and removes the upload. s3s-fs's own completion reads every
    /// byte back to compute MD5s it already computed once per part (or, for SSE-KMS, need not
    /// compute at all): a serial pass over the whole object at the end of every upload.
    pub(super) async fn finish_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        e_tag: &str,
        parts: usize,
    ) -> S3Result<()> {
        if !tokio::fs::metadata(self.root.join(bucket))
            .await
            .is_ok_and(|m| m.is_dir())
        {
            return Err(s3_error!(NoSuchBucket));
        }
        let sources: Vec<PathBuf> = (1..=parts)
            .map(|n| self.fs_part_path(upload_id, n as i32))
            .collect();
        let (dest, tmp) = (self.object_path(bucket, key), self.temp_path());
        tokio::task::spawn_blocking(move || {
            let joined = (|| -> std::io::Result<()> {
                let mut out = std::fs::File::create(&tmp)?;
                for part in &sources {
                    // std uses copy_file_range for file-to-file copies on Linux.
                    std::io::copy(&mut std::fs::File::open(part)?, &mut out)?;
                }
                drop(out);
                if let Some(dir) = dest.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::rename(&tmp, &dest)
            })();
            if joined.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            joined
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;

        let info_path = self.fs_object_file(bucket, key, ".internal.json");
        let mut info: serde_json::Map<String, serde_json::Value> =
            Self::read_json(&info_path).await?.unwrap_or_default();
        info.insert("e_tag".into(), e_tag.into());
        self.write_json(&info_path, &info).await?;
        let attributes =
            self.fs_object_file(bucket, key, &format!(".upload-{upload_id}.metadata.json"));
        match tokio::fs::rename(
            &attributes,
            self.fs_object_file(bucket, key, ".metadata.json"),
        )
        .await
        {
            Ok(()) => {}
            Err(err) if not_found(&err) => {}
            Err(err) => return Err(internal(err)),
        }
        Self::remove_file(&self.fs_upload_info_path(upload_id)).await?;
        for n in 1..=parts {
            Self::remove_file(&self.fs_part_path(upload_id, n as i32)).await?;
        }
        Ok(())
    }
}
