//! Drains the outbox into S3.
//!
//! Per item: the payloads first (raw audio and features at the same time, sharing one budget of
//! parts in flight), the manifest last, so a manifest in the bucket means its payloads are there.
//! Each object is written with SSE-KMS under the project key, a checksum, and `If-None-Match: *`
//! (never overwrite). Small objects use PutObject with the whole ciphertext's SHA-256 from the
//! manifest (nothing to compute); larger ones a multipart upload with parts of at least 8 MiB and
//! CRC32C part checksums, whose upload id and acknowledged parts are saved in the item's
//! `state.json` after every part, so an interrupted upload resumes (ListParts) instead of starting
//! over (one saved by an earlier version with SHA-256 parts resumes with SHA-256). A crash between
//! CreateMultipartUpload and saving its id leaves an upload the write-only credentials cannot
//! list; the bucket's lifecycle rule aborts it (docs/reliability.md). The server's
//! answer is the only confirmation a write-only contractor gets: the checksum S3 returns must
//! equal ours (for a multipart object, the COMPOSITE checksum of the part checksums S3
//! acknowledged), and only then is the local ciphertext deleted. A 412 means an earlier attempt
//! already stored this exact content (keys carry the content hash); it is recorded as done, with
//! an audit event.
//!
//! The body is not hashed for SigV4: the signed checksum header stands for it and the payload is
//! sent as `UNSIGNED-PAYLOAD`. Part checksums are CRC32C because they only guard the transfer:
//! TLS guards it against tampering, the age ciphertext authenticates itself, and the manifest
//! holds every payload's SHA-256 for whoever downloads it; a SHA-256 per part cost client and
//! server a core-second per GiB.
//!
//! Offline is a state, not an error: a network failure leaves the item queued for the next run.
//!
//! After a drain that uploaded items (or after one whose checkpoint failed), the audit log's head
//! goes to the bucket as an audit checkpoint (`manifests/<c>/audit/<seq>-<hash>.checkpoint`, see
//! [`voxseal_core::store::audit::Checkpoint`]) with the same session, so a verifier holding the bucket can
//! tell whether the log was later cut back or rewritten. A checkpoint that fails never fails the
//! upload: it is audited (`audit.checkpoint_failed`) and tried again after the next drain.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use base64::Engine;
use sha2::{Digest, Sha256};
use voxseal_core::project::manifest::PayloadKind;
use voxseal_core::store::audit::{AuditLog, Checkpoint};
use voxseal_core::store::outbox::{
    DonePart, ItemStatus, MultipartState, ObjectState, Outbox, OutboxItem, PartChecksum,
};

use crate::object_key::{ObjectKind, checkpoint_key, object_key};
use crate::provider::{CachingProvider, CredentialError};

const MIB: u64 = 1024 * 1024;

/// How uploads are done.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// The S3 endpoint (None: AWS's default for the region).
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// The KMS key ARN for SSE-KMS.
    pub kms_key_arn: String,
    /// Objects larger than this use multipart uploads.
    pub multipart_threshold: u64,
    /// Part size (at least 8 MiB unless testing; S3's minimum is 5 MiB).
    pub part_size: u64,
    /// Parts in flight at once.
    pub parallel_parts: usize,
}

impl UploadConfig {
    /// Defaults: multipart above 16 MiB, 8 MiB parts, 4 in parallel.
    pub fn new(
        endpoint: Option<String>,
        region: String,
        bucket: String,
        kms_key_arn: String,
    ) -> Self {
        Self {
            endpoint,
            region,
            bucket,
            kms_key_arn,
            multipart_threshold: 16 * MIB,
            part_size: 8 * MIB,
            parallel_parts: 4,
        }
    }
}

/// Why an upload did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// No credentials (offline, revoked, ...).
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The network failed mid-upload; the item stays queued and resumes.
    #[error("offline: {0}; the upload will resume")]
    Offline(String),
    /// The server refused the request.
    #[error("S3 refused {op} for {key}: {code}: {message}")]
    Refused {
        /// The operation.
        op: &'static str,
        /// The object key.
        key: String,
        /// S3's error code.
        code: String,
        /// S3's message.
        message: String,
    },
    /// The checksum the server returned is not ours.
    #[error("S3 returned checksum {got} for {key}, expected {want}; the local copy is kept")]
    ChecksumMismatch {
        /// The object key.
        key: String,
        /// Ours.
        want: String,
        /// Theirs.
        got: String,
    },
    /// S3 says the object exists (`412`) but an earlier attempt to store it was not confirmed, so
    /// it may hold other bytes.
    #[error(
        "S3 already holds {key}, but never confirmed it as ours (it answered checksum {got}); the local copy is kept: ask the project lead to check that object"
    )]
    Unconfirmable {
        /// The object key.
        key: String,
        /// What the server answered when it stored it.
        got: String,
    },
    /// The server said the credentials expired before the client expected (a clock that runs
    /// behind, a grant cut short); fresh ones are fetched and the upload resumes.
    #[error("credentials expired mid-upload ({0}); refreshing")]
    CredentialsExpired(String),
    /// This computer's clock is too far off.
    #[error(
        "S3 refused the request because this computer's clock is off by more than 15 minutes: set the clock and retry"
    )]
    ClockSkew,
    /// Local files could not be read or state written.
    #[error("{0}")]
    Local(String),
}

impl UploadError {
    /// True when waiting and retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Credentials(e) => e.is_transient(),
            Self::Offline(_) | Self::CredentialsExpired(_) => true,
            _ => false,
        }
    }
}

/// Progress of a drain, for progress bars (payload bytes; the small manifests are not counted).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct UploadProgress {
    /// Bytes uploaded so far in this run, all items.
    pub bytes_done: u64,
    /// Bytes of all items in this run.
    pub bytes_total: u64,
    /// Items finished in this run.
    pub items_done: usize,
    /// Items in this run.
    pub items_total: usize,
    /// The item being uploaded.
    pub sample_id: Option<String>,
    /// Its bytes done.
    pub item_bytes_done: u64,
    /// Its bytes.
    pub item_bytes_total: u64,
}

/// What a drain did.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    /// Items now fully uploaded.
    pub uploaded: Vec<String>,
    /// Items that failed permanently (with why).
    pub failed: Vec<(String, String)>,
    /// Set when the drain stopped because the network or broker is unavailable.
    pub offline: Option<String>,
    /// Items still queued.
    pub queued: usize,
    /// The key of the audit checkpoint uploaded after the items, if one was.
    pub checkpoint: Option<String>,
    /// Why the audit checkpoint due after this drain was not uploaded (it is tried again after
    /// the next drain; the items' uploads stand).
    pub checkpoint_error: Option<String>,
}

/// Uploads outbox items.
pub struct Uploader {
    cfg: UploadConfig,
    provider: CachingProvider,
    client: aws_sdk_s3::Client,
    outbox: Outbox,
    audit: AuditLog,
}

fn build_client(cfg: &UploadConfig, provider: &CachingProvider) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{
        BehaviorVersion, IdentityCache, Region, RequestChecksumCalculation,
        ResponseChecksumValidation, retry::RetryConfig, timeout::TimeoutConfig,
    };
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .credentials_provider(provider.clone())
        // Our provider caches and refreshes; the SDK asks it before every request.
        .identity_cache(IdentityCache::no_cache())
        // We send the checksums ourselves, as headers (SHA-256 or CRC32C).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .operation_attempt_timeout(std::time::Duration::from_secs(120))
                .build(),
        );
    if let Some(ep) = &cfg.endpoint {
        b = b.endpoint_url(ep).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The error code and message of an SDK error, or `None` for network failures.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &aws_sdk_s3::error::SdkError<E>,
) -> Option<(String, String)> {
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            None
        }
        SdkError::ServiceError(s) => {
            let err = s.err();
            let status = s.raw().status().as_u16();
            Some((
                err.code()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("HTTP {status}")),
                err.message().unwrap_or_default().to_owned(),
            ))
        }
        other => Some((
            "ClientError".into(),
            aws_sdk_s3::error::DisplayErrorContext(other).to_string(),
        )),
    }
}

/// The item being uploaded, shared by its concurrent payload uploads: each locks it briefly to
/// update its object's state and save `state.json`; no lock is held across an `.await`.
struct SharedItem<'a>(std::sync::Mutex<&'a mut OutboxItem>);

impl SharedItem<'_> {
    fn with<R>(&self, f: impl FnOnce(&mut OutboxItem) -> R) -> R {
        let mut item = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut item)
    }
}

/// Deletes a payload's local ciphertext once S3 has confirmed it. Deleted, not overwritten: it is
/// sealed to keys this laptop does not hold and the same bytes are in the bucket, so zeroing it
/// (a full write of the file) would protect nothing (docs/wipe.md).
fn delete_ciphertext(path: &Path) -> Result<(), UploadError> {
    voxseal_core::store::wipe::delete_file(path).map_err(|e| UploadError::Local(e.to_string()))
}

enum Outcome {
    Stored { checksum: Option<String> },
    AlreadyThere,
}

impl Uploader {
    /// An uploader writing `outbox` items with credentials from `provider`.
    pub fn new(
        cfg: UploadConfig,
        provider: CachingProvider,
        outbox: Outbox,
        audit: AuditLog,
    ) -> Self {
        let client = build_client(&cfg, &provider);
        Self {
            cfg,
            provider,
            client,
            outbox,
            audit,
        }
    }

    fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        op: &'static str,
        key: &str,
        e: aws_sdk_s3::error::SdkError<E>,
    ) -> UploadError {
        match classify(&e) {
            None => UploadError::Offline(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()),
            Some((code, _)) if code == "RequestTimeTooSkewed" => UploadError::ClockSkew,
            Some((code, message)) => UploadError::Refused {
                op,
                key: key.to_owned(),
                code,
                message,
            },
        }
    }

    /// Uploads every item that is not uploaded yet, oldest first. Stops at the first sign of
    /// being offline (the rest stay queued); permanent failures are recorded on the item and
    /// the drain continues with the next one. Then, unless offline, uploads an audit checkpoint
    /// when one is due ([`Self::checkpoint_due`]); its failure is reported, not returned.
    pub async fn drain(
        &self,
        progress: &(dyn Fn(UploadProgress) + Send + Sync),
    ) -> Result<DrainReport, UploadError> {
        let mut report = self.drain_items(progress).await?;
        if report.offline.is_none() && self.checkpoint_due() {
            match self.checkpoint().await {
                Ok(key) => report.checkpoint = Some(key),
                Err(e) => {
                    let _ = self.audit.append(
                        "audit.checkpoint_failed",
                        serde_json::json!({
                            "error": e.to_string(),
                            "reason": "the audit log's head could not be stored in the bucket; tried again after the next upload",
                        }),
                    );
                    report.checkpoint_error = Some(e.to_string());
                }
            }
        }
        Ok(report)
    }

    /// Whether events since the newest uploaded checkpoint include an upload: every drain that
    /// stored an item ends with a checkpoint, and one that failed is tried again next time. A
    /// log that does not verify gets none (appending to it fails too; `audit verify` says why).
    pub fn checkpoint_due(&self) -> bool {
        let Ok(entries) = self.audit.entries() else {
            return false;
        };
        entries
            .iter()
            .rev()
            .take_while(|e| e.event != "audit.checkpointed")
            .any(|e| e.event == "item.uploaded")
    }

    /// Uploads the audit log's head as a checkpoint under the session's own `manifests/`
    /// prefix, with SSE-KMS, its SHA-256 and `If-None-Match: *` like every object, then records
    /// `audit.checkpointed`. Returns its key.
    pub async fn checkpoint(&self) -> Result<String, UploadError> {
        let creds = self.provider.current().await?;
        let contractor = creds
            .prefixes
            .iter()
            .find_map(|p| p.strip_prefix("manifests/")?.strip_suffix('/'))
            .ok_or_else(|| {
                UploadError::Local(
                    "the upload session allows no manifests/ prefix for the audit checkpoint"
                        .into(),
                )
            })?
            .parse()
            .map_err(|e| UploadError::Local(format!("the session's manifests/ prefix: {e}")))?;
        let head = self
            .audit
            .head()
            .map_err(|e| UploadError::Local(e.to_string()))?;
        let cp = Checkpoint::new(contractor, &head);
        let key = checkpoint_key(&cp);
        let body = cp.to_json();
        let expected = b64(&Sha256::digest(&body));
        match self.put(&key, ByteStream::from(body), &expected).await? {
            Outcome::Stored {
                checksum: Some(got),
            } if got == expected => {}
            Outcome::Stored { checksum } => {
                return Err(UploadError::ChecksumMismatch {
                    key,
                    want: expected,
                    got: checksum.unwrap_or_else(|| "none".to_owned()),
                });
            }
            // The name carries the head's seq and hash: an earlier attempt stored this head.
            Outcome::AlreadyThere => {}
        }
        let _ = self.audit.append(
            "audit.checkpointed",
            serde_json::json!({ "key": key, "seq": head.seq, "hash": head.hash }),
        );
        Ok(key)
    }

    async fn drain_items(
        &self,
        progress: &(dyn Fn(UploadProgress) + Send + Sync),
    ) -> Result<DrainReport, UploadError> {
        let (items, _damaged) = self
            .outbox
            .list()
            .map_err(|e| UploadError::Local(e.to_string()))?;
        let pending: Vec<OutboxItem> = items
            .into_iter()
            .filter(|i| i.state.status != ItemStatus::Uploaded)
            .collect();
        let size = |i: &OutboxItem| i.manifest.payloads.iter().map(|x| x.size).sum::<u64>();
        let bytes_total: u64 = pending.iter().map(size).sum();
        let mut p = UploadProgress {
            bytes_total,
            items_total: pending.len(),
            ..Default::default()
        };
        progress(p.clone());
        let mut report = DrainReport::default();
        let total = pending.len();
        for (n, mut item) in pending.into_iter().enumerate() {
            let base = p.bytes_done;
            p.sample_id = Some(item.manifest.sample_id.to_string());
            p.item_bytes_total = size(&item);
            p.item_bytes_done = 0;
            let current = p.clone();
            // Credentials the server expired early are refreshed and the item resumed at once, as
            // long as each try gets further (two tries in a row without progress: a server that
            // expires every grant at once is not helped by more).
            let confirmed = |item: &OutboxItem| -> usize {
                item.state
                    .objects
                    .values()
                    .map(|o| {
                        usize::from(o.done) + o.multipart.as_ref().map_or(0, |m| m.parts.len())
                    })
                    .sum()
            };
            let mut stalled = 0;
            let result = loop {
                let before = confirmed(&item);
                let result = self
                    .upload_item(&mut item, &|done| {
                        progress(UploadProgress {
                            bytes_done: base + done,
                            item_bytes_done: done,
                            ..current.clone()
                        })
                    })
                    .await;
                if !matches!(result, Err(UploadError::CredentialsExpired(_))) {
                    break result;
                }
                stalled = if confirmed(&item) > before {
                    0
                } else {
                    stalled + 1
                };
                if stalled >= 2 {
                    break result;
                }
            };
            match result {
                Ok(()) => {
                    report.uploaded.push(item.manifest.sample_id.to_string());
                    p.items_done += 1;
                    p.bytes_done = base + p.item_bytes_total;
                    p.item_bytes_done = p.item_bytes_total;
                    progress(p.clone());
                }
                Err(e) if e.is_transient() => {
                    report.offline = Some(e.to_string());
                    report.queued = total - n;
                    return Ok(report);
                }
                Err(e) => {
                    // Revoked, refused, mismatched: stop the drain for credential errors (every
                    // item would fail the same way), continue for per-item errors.
                    let stop = matches!(e, UploadError::Credentials(_) | UploadError::ClockSkew);
                    report
                        .failed
                        .push((item.manifest.sample_id.to_string(), e.to_string()));
                    if stop {
                        report.queued = total - n;
                        return Err(e);
                    }
                }
            }
        }
        Ok(report)
    }

    /// Uploads one item (resuming where an earlier attempt stopped).
    pub async fn upload_item(
        &self,
        item: &mut OutboxItem,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), UploadError> {
        if item.state.status == ItemStatus::Uploading {
            // An earlier attempt never finished: the network went away, or the process ended
            // (a crash or a kill leaves no other trace in the log). Say what is being resumed.
            let _ = self.audit.append(
                "upload.resumed",
                serde_json::json!({
                    "sample": item.manifest.sample_id,
                    "attempt": item.state.attempts + 1,
                    "objects_done": item.state.objects.iter().filter(|(_, o)| o.done).map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                    "parts_done": item.state.objects.values().filter_map(|o| o.multipart.as_ref()).map(|m| m.parts.len()).sum::<usize>(),
                }),
            );
        }
        item.state.status = ItemStatus::Uploading;
        item.state.attempts += 1;
        item.state.last_error = None;
        self.save(item)?;
        let result = self.upload_objects(item, progress).await;
        match &result {
            Ok(()) => {
                item.state.status = ItemStatus::Uploaded;
                self.save(item)?;
                voxseal_core::fault::point("upload.done");
                let _ = self.audit.append(
                    "item.uploaded",
                    serde_json::json!({
                        "sample": item.manifest.sample_id,
                        "objects": item.state.objects.iter().map(|(k, o)| (k.clone(), serde_json::json!({
                            "key": o.key, "checksum": o.confirmed_checksum, "already_existed": o.already_existed,
                        }))).collect::<BTreeMap<_, _>>(),
                    }),
                );
            }
            Err(e) => {
                item.state.status = if e.is_transient() {
                    ItemStatus::Uploading
                } else {
                    ItemStatus::Failed
                };
                item.state.last_error = Some(e.to_string());
                self.save(item)?;
                let _ = self.audit.append(
                    if e.is_transient() { "upload.interrupted" } else { "upload.failed" },
                    serde_json::json!({ "sample": item.manifest.sample_id, "error": e.to_string() }),
                );
            }
        }
        result
    }

    fn save(&self, item: &mut OutboxItem) -> Result<(), UploadError> {
        self.outbox
            .save_state(item)
            .map_err(|e| UploadError::Local(e.to_string()))
    }

    async fn upload_objects(
        &self,
        item: &mut OutboxItem,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), UploadError> {
        // Credentials first, once: a broker that refuses (revoked, wrong clock) is asked once,
        // not once per payload.
        self.provider.current().await?;
        let cell = SharedItem(std::sync::Mutex::new(item));
        // One budget of parts in flight for the whole item: both payloads upload at once (no idle
        // tail between them), the manifest only after both are confirmed.
        let parts_in_flight = Arc::new(tokio::sync::Semaphore::new(self.cfg.parallel_parts.max(1)));
        let done_total = AtomicU64::new(0);
        let payload = |kind: PayloadKind| {
            let (cell, parts_in_flight, done_total) = (&cell, &parts_in_flight, &done_total);
            async move {
                if cell.with(|item| item.manifest.payload(kind).is_none()) {
                    return Ok(());
                }
                // This payload's bytes done, folded into the item's total.
                let mine = AtomicU64::new(0);
                let report = |b: u64| {
                    let before = mine.swap(b, Ordering::Relaxed);
                    let total = if b >= before {
                        done_total.fetch_add(b - before, Ordering::Relaxed) + (b - before)
                    } else {
                        done_total.fetch_sub(before - b, Ordering::Relaxed) - (before - b)
                    };
                    progress(total);
                };
                self.upload_object(cell, ObjectKind::Payload(kind), parts_in_flight, &report)
                    .await
            }
        };
        let (raw, features) =
            tokio::join!(payload(PayloadKind::Raw), payload(PayloadKind::Features));
        // Both ran to the end (a failure of one does not cut the other short); report a permanent
        // failure before a transient one, so the item is marked failed rather than retried.
        match (raw, features) {
            (Ok(()), Ok(())) => {}
            (Err(a), Err(b)) if a.is_transient() && !b.is_transient() => return Err(b),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        }
        self.upload_object(&cell, ObjectKind::Manifest, &parts_in_flight, &|_| {})
            .await
    }

    /// Uploads one object of the item (or finishes what an earlier attempt left), confirms the
    /// checksum S3 returns, saves the state and deletes the local ciphertext of a payload.
    async fn upload_object(
        &self,
        cell: &SharedItem<'_>,
        kind: ObjectKind,
        parts_in_flight: &Arc<tokio::sync::Semaphore>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), UploadError> {
        let name = kind.state_name();
        let (key, path, size, payload_sha, done) = cell.with(|item| {
            let key = object_key(&item.manifest, kind);
            let obj = item
                .state
                .objects
                .entry(name.to_owned())
                .or_insert_with(|| ObjectState {
                    key: key.clone(),
                    ..Default::default()
                });
            if obj.key != key {
                return Err(UploadError::Local(format!(
                    "{name}: state names key {} but the manifest gives {key}",
                    obj.key
                )));
            }
            // Done, and whether that was confirmed (so the local copy may go).
            let done = obj
                .done
                .then(|| obj.confirmed_checksum.is_some() || obj.already_existed);
            Ok(match kind {
                ObjectKind::Payload(k) => {
                    let p = item.manifest.payload(k).expect("checked by the caller");
                    (
                        key,
                        item.dir.join(&p.file),
                        p.size,
                        Some(p.sha256.clone()),
                        done,
                    )
                }
                ObjectKind::Manifest => (
                    key,
                    item.dir.join(voxseal_core::store::outbox::MANIFEST_FILE),
                    0,
                    None,
                    done,
                ),
            })
        })?;
        let is_payload = matches!(kind, ObjectKind::Payload(_));
        if let Some(confirmed) = done {
            // A process that ended between saving "done" and deleting the local copy left the
            // ciphertext behind; it is confirmed, so it goes now.
            if is_payload && confirmed && path.exists() {
                delete_ciphertext(&path)?;
            }
            progress(size);
            return Ok(());
        }
        let (size, sha_hex) = match payload_sha {
            Some(sha) => (size, sha),
            None => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| UploadError::Local(format!("{}: {e}", path.display())))?;
                (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)))
            }
        };
        let (outcome, expected) = if size > self.cfg.multipart_threshold {
            self.multipart(cell, name, &key, &path, size, parts_in_flight, progress)
                .await?
        } else {
            let expected =
                b64(&hex::decode(&sha_hex).map_err(|e| UploadError::Local(e.to_string()))?);
            let body = ByteStream::from_path(&path)
                .await
                .map_err(|e| UploadError::Local(format!("{}: {e}", path.display())))?;
            (self.put(&key, body, &expected).await?, expected)
        };
        cell.with(|item| -> Result<(), UploadError> {
            let sample = item.manifest.sample_id.to_string();
            let obj = item.state.objects.get_mut(name).expect("inserted above");
            match outcome {
                Outcome::Stored {
                    checksum: Some(got),
                } if got == expected => {
                    obj.done = true;
                    obj.confirmed_checksum = Some(got);
                    obj.multipart = None;
                }
                Outcome::Stored { checksum } => {
                    // Stored, says the server, but not provably our bytes: keep the local copy,
                    // and remember it, so a later 412 on this key is not taken as confirmation.
                    let got = checksum.unwrap_or_else(|| "none".to_owned());
                    obj.unconfirmed = Some(got.clone());
                    obj.multipart = None;
                    return Err(UploadError::ChecksumMismatch {
                        key,
                        want: expected,
                        got,
                    });
                }
                Outcome::AlreadyThere if obj.unconfirmed.is_some() => {
                    return Err(UploadError::Unconfirmable {
                        key,
                        got: obj.unconfirmed.clone().unwrap_or_default(),
                    });
                }
                Outcome::AlreadyThere => {
                    obj.done = true;
                    obj.already_existed = true;
                    obj.multipart = None;
                    let _ = self.audit.append(
                        "upload.already_stored",
                        serde_json::json!({
                            "sample": sample, "key": key,
                            "reason": "If-None-Match: * returned 412; the key carries the content hash, so an earlier attempt stored this exact content",
                        }),
                    );
                }
            }
            voxseal_core::fault::point("upload.stored");
            self.save(item)?;
            voxseal_core::fault::point("upload.saved");
            Ok(())
        })?;
        // Ciphertext goes only once the server has confirmed it; the manifest stays as the record.
        if is_payload {
            delete_ciphertext(&path)?;
            voxseal_core::fault::point("upload.deleted");
            progress(size);
        }
        Ok(())
    }

    async fn put(
        &self,
        key: &str,
        body: ByteStream,
        checksum: &str,
    ) -> Result<Outcome, UploadError> {
        self.provider.current().await?;
        let res = self
            .client
            .put_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .body(body)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.cfg.kms_key_arn)
            .if_none_match("*")
            .customize()
            // The signed x-amz-checksum-sha256 header already binds the body to the signature;
            // hashing it a second time for SigV4 would only cost a pass over the file.
            .disable_payload_signing()
            .send()
            .await;
        match res {
            Ok(out) => Ok(Outcome::Stored {
                checksum: out.checksum_sha256,
            }),
            Err(e) => self.conditional_failure("PutObject", key, e).await,
        }
    }

    async fn conditional_failure<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        op: &'static str,
        key: &str,
        e: aws_sdk_s3::error::SdkError<E>,
    ) -> Result<Outcome, UploadError> {
        match classify(&e) {
            Some((code, _)) if code == "PreconditionFailed" => Ok(Outcome::AlreadyThere),
            Some((code, _)) if code == "ExpiredToken" || code == "InvalidToken" => {
                // Fresh credentials next time; the attempt is retried by the caller's next drain.
                self.provider.invalidate().await;
                Err(UploadError::CredentialsExpired(format!("{op}: {code}")))
            }
            _ => Err(self.s3_error(op, key, e)),
        }
    }

    /// A multipart upload, resumed from the saved state when there is one. Returns the outcome
    /// and the COMPOSITE checksum S3 must answer: the one of the part checksums S3 acknowledged.
    #[allow(clippy::too_many_arguments)]
    async fn multipart(
        &self,
        cell: &SharedItem<'_>,
        name: &str,
        key: &str,
        path: &Path,
        size: u64,
        parts_in_flight: &Arc<tokio::sync::Semaphore>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(Outcome, String), UploadError> {
        // Resume or start.
        let (mut state, sample) = cell.with(|item| {
            (
                item.state
                    .objects
                    .get(name)
                    .and_then(|o| o.multipart.clone()),
                item.manifest.sample_id.to_string(),
            )
        });
        if let Some(mp) = &state {
            match self.list_parts(key, &mp.upload_id, mp.algorithm).await {
                Ok(server) => {
                    // Keep only parts the server has with the checksum we recorded.
                    let kept: Vec<DonePart> = mp
                        .parts
                        .iter()
                        .filter(|p| server.get(&p.number).is_some_and(|c| c == &p.checksum))
                        .cloned()
                        .collect();
                    let mut mp = mp.clone();
                    mp.parts = kept;
                    state = Some(mp);
                }
                Err(UploadError::Refused { code, .. }) if code == "NoSuchUpload" => {
                    let _ = self.audit.append(
                        "upload.restarted",
                        serde_json::json!({"sample": sample, "key": key, "reason": "the earlier multipart upload no longer exists"}),
                    );
                    state = None;
                }
                Err(e) => return Err(e),
            }
        }
        let mut mp = match state {
            Some(mp) => mp,
            None => {
                self.provider.current().await?;
                let out = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.cfg.bucket)
                    .key(key)
                    .checksum_algorithm(PART_CHECKSUM.sdk())
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(&self.cfg.kms_key_arn)
                    .send()
                    .await
                    .map_err(|e| self.s3_error("CreateMultipartUpload", key, e))?;
                let upload_id = out.upload_id.ok_or_else(|| UploadError::Refused {
                    op: "CreateMultipartUpload",
                    key: key.into(),
                    code: "NoUploadId".into(),
                    message: "no upload id returned".into(),
                })?;
                MultipartState {
                    upload_id,
                    part_size: self.cfg.part_size,
                    algorithm: PART_CHECKSUM,
                    parts: Vec::new(),
                }
            }
        };
        cell.with(|item| {
            item.state.objects.get_mut(name).expect("present").multipart = Some(mp.clone());
            self.save(item)
        })?;

        let part_count = size.div_ceil(mp.part_size).max(1) as i32;
        let have: std::collections::HashSet<i32> = mp.parts.iter().map(|p| p.number).collect();
        let todo: Vec<i32> = (1..=part_count).filter(|n| !have.contains(n)).collect();
        let mut done_bytes: u64 = mp
            .parts
            .iter()
            .map(|p| part_len(size, mp.part_size, p.number))
            .sum();
        progress(done_bytes);

        let mut tasks = tokio::task::JoinSet::new();
        for n in todo {
            let permit = parts_in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let client = self.client.clone();
            let provider = self.provider.clone();
            let (t_bucket, t_key, t_upload_id, t_path) = (
                self.cfg.bucket.clone(),
                key.to_owned(),
                mp.upload_id.clone(),
                path.to_owned(),
            );
            let (part_size, algorithm) = (mp.part_size, mp.algorithm);
            tasks.spawn(async move {
                let _permit = permit;
                let bytes = read_part(&t_path, size, part_size, n).await?;
                let checksum = algorithm.of(&bytes);
                provider
                    .current()
                    .await
                    .map_err(|e| (n, PartError::Credentials(e)))?;
                let len = bytes.len() as u64;
                let req = client
                    .upload_part()
                    .bucket(&t_bucket)
                    .key(&t_key)
                    .upload_id(&t_upload_id)
                    .part_number(n);
                let req = match algorithm {
                    PartChecksum::Sha256 => req.checksum_sha256(&checksum),
                    PartChecksum::Crc32c => req.checksum_crc32_c(&checksum),
                };
                let out = req
                    .body(ByteStream::from(bytes))
                    .customize()
                    // As in `put`: the signed checksum header covers the body.
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| (n, PartError::from_sdk(e)))?;
                let answered = match algorithm {
                    PartChecksum::Sha256 => &out.checksum_sha256,
                    PartChecksum::Crc32c => &out.checksum_crc32_c,
                };
                if let Some(got) = answered
                    && got != &checksum
                {
                    return Err((n, PartError::Mismatch(got.clone(), checksum)));
                }
                Ok((
                    DonePart {
                        number: n,
                        etag: out.e_tag.unwrap_or_default(),
                        checksum,
                    },
                    len,
                ))
            });
            // Collect finished parts as we go so state is saved promptly.
            while let Some(res) = tasks.try_join_next() {
                self.record_part(cell, name, &mut mp, res, &mut done_bytes, progress, key)
                    .await?;
            }
        }
        while let Some(res) = tasks.join_next().await {
            self.record_part(cell, name, &mut mp, res, &mut done_bytes, progress, key)
                .await?;
        }

        mp.parts.sort_by_key(|p| p.number);
        let expected = composite_of_parts(mp.algorithm, &mp.parts)?;
        let parts: Vec<CompletedPart> = mp
            .parts
            .iter()
            .map(|p| {
                let part = CompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(&p.etag);
                match mp.algorithm {
                    PartChecksum::Sha256 => part.checksum_sha256(&p.checksum),
                    PartChecksum::Crc32c => part.checksum_crc32_c(&p.checksum),
                }
                .build()
            })
            .collect();
        self.provider.current().await?;
        let res = self
            .client
            .complete_multipart_upload()
            .bucket(&self.cfg.bucket)
            .key(key)
            .upload_id(&mp.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .if_none_match("*")
            .send()
            .await;
        let outcome = match res {
            Ok(out) => {
                voxseal_core::fault::point("upload.completed");
                Outcome::Stored {
                    checksum: match mp.algorithm {
                        PartChecksum::Sha256 => out.checksum_sha256,
                        PartChecksum::Crc32c => out.checksum_crc32_c,
                    },
                }
            }
            Err(e) => {
                let r = self
                    .conditional_failure("CompleteMultipartUpload", key, e)
                    .await;
                if matches!(r, Ok(Outcome::AlreadyThere)) {
                    // The object exists: our parts are abandoned, remove them.
                    let _ = self
                        .client
                        .abort_multipart_upload()
                        .bucket(&self.cfg.bucket)
                        .key(key)
                        .upload_id(&mp.upload_id)
                        .send()
                        .await;
                }
                r?
            }
        };
        Ok((outcome, expected))
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_part(
        &self,
        cell: &SharedItem<'_>,
        name: &str,
        mp: &mut MultipartState,
        res: Result<PartResult, tokio::task::JoinError>,
        done_bytes: &mut u64,
        progress: &(dyn Fn(u64) + Send + Sync),
        key: &str,
    ) -> Result<(), UploadError> {
        let (part, len) = match res {
            Ok(Ok(x)) => x,
            Ok(Err((n, e))) => return Err(e.into_upload_error(key, n, &self.provider).await),
            Err(e) => {
                return Err(UploadError::Local(format!(
                    "a part upload task failed: {e}"
                )));
            }
        };
        mp.parts.push(part);
        *done_bytes += len;
        progress(*done_bytes);
        cell.with(|item| {
            item.state.objects.get_mut(name).expect("present").multipart = Some(mp.clone());
            self.save(item)
        })?;
        voxseal_core::fault::point("upload.part");
        Ok(())
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
        algorithm: PartChecksum,
    ) -> Result<BTreeMap<i32, String>, UploadError> {
        let mut out = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            self.provider.current().await?;
            let mut req = self
                .client
                .list_parts()
                .bucket(&self.cfg.bucket)
                .key(key)
                .upload_id(upload_id);
            if let Some(m) = &marker {
                req = req.part_number_marker(m);
            }
            let page = req
                .send()
                .await
                .map_err(|e| self.s3_error("ListParts", key, e))?;
            for p in page.parts() {
                let c = match algorithm {
                    PartChecksum::Sha256 => p.checksum_sha256.clone(),
                    PartChecksum::Crc32c => p.checksum_crc32_c.clone(),
                };
                if let (Some(n), Some(c)) = (p.part_number, c) {
                    out.insert(n, c);
                }
            }
            if page.is_truncated == Some(true) {
                marker = page.next_part_number_marker;
            } else {
                return Ok(out);
            }
        }
    }
}

/// What a part-upload task returns: the acknowledged part and its length, or its number and why.
type PartResult = Result<(DonePart, u64), (i32, PartError)>;

enum PartError {
    Credentials(CredentialError),
    Sdk(Option<(String, String)>, String),
    Mismatch(String, String),
    Io(String),
}

impl PartError {
    fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static>(
        e: aws_sdk_s3::error::SdkError<E>,
    ) -> Self {
        Self::Sdk(
            classify(&e),
            aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        )
    }

    async fn into_upload_error(self, key: &str, n: i32, provider: &CachingProvider) -> UploadError {
        match self {
            Self::Credentials(e) => UploadError::Credentials(e),
            Self::Sdk(None, detail) => UploadError::Offline(detail),
            Self::Sdk(Some((code, _)), _) if code == "ExpiredToken" || code == "InvalidToken" => {
                provider.invalidate().await;
                UploadError::CredentialsExpired(format!("part {n}: {code}"))
            }
            Self::Sdk(Some((code, _)), _) if code == "RequestTimeTooSkewed" => {
                UploadError::ClockSkew
            }
            Self::Sdk(Some((code, message)), _) => UploadError::Refused {
                op: "UploadPart",
                key: key.into(),
                code,
                message,
            },
            Self::Mismatch(got, want) => UploadError::ChecksumMismatch {
                key: format!("{key} part {n}"),
                want,
                got,
            },
            Self::Io(e) => UploadError::Local(e),
        }
    }
}

fn part_len(size: u64, part_size: u64, n: i32) -> u64 {
    let start = (n as u64 - 1) * part_size;
    size.saturating_sub(start).min(part_size)
}

async fn read_part(
    path: &Path,
    size: u64,
    part_size: u64,
    n: i32,
) -> Result<Vec<u8>, (i32, PartError)> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let len = part_len(size, part_size, n) as usize;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| (n, PartError::Io(format!("{}: {e}", path.display()))))?;
    f.seek(std::io::SeekFrom::Start((n as u64 - 1) * part_size))
        .await
        .map_err(|e| (n, PartError::Io(e.to_string())))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)
        .await
        .map_err(|e| (n, PartError::Io(e.to_string())))?;
    Ok(buf)
}

/// The part checksum new multipart uploads use (see [`PartChecksum::Crc32c`]).
const PART_CHECKSUM: PartChecksum = PartChecksum::Crc32c;

/// [`PartChecksum`] as the uploader uses it.
trait PartChecksumExt {
    /// The SDK's name for it.
    fn sdk(self) -> ChecksumAlgorithm;
    /// The raw checksum of `bytes`.
    fn raw(self, bytes: &[u8]) -> Vec<u8>;
    /// Its length in bytes.
    fn len(self) -> usize;
    /// The base64 checksum of `bytes`, as S3 sends it.
    fn of(self, bytes: &[u8]) -> String;
}

impl PartChecksumExt for PartChecksum {
    fn sdk(self) -> ChecksumAlgorithm {
        match self {
            PartChecksum::Sha256 => ChecksumAlgorithm::Sha256,
            PartChecksum::Crc32c => ChecksumAlgorithm::Crc32C,
        }
    }
    fn raw(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            PartChecksum::Sha256 => Sha256::digest(bytes).to_vec(),
            PartChecksum::Crc32c => crc32c::crc32c(bytes).to_be_bytes().to_vec(),
        }
    }
    fn len(self) -> usize {
        match self {
            PartChecksum::Sha256 => 32,
            PartChecksum::Crc32c => 4,
        }
    }
    fn of(self, bytes: &[u8]) -> String {
        b64(&self.raw(bytes))
    }
}

/// The COMPOSITE checksum S3 answers for a multipart object made of `parts` (sorted by number):
/// the `algorithm` checksum of the concatenated raw part checksums S3 acknowledged, then `-N`.
/// No second pass over the file.
fn composite_of_parts(algorithm: PartChecksum, parts: &[DonePart]) -> Result<String, UploadError> {
    let mut raw = Vec::with_capacity(parts.len() * algorithm.len());
    for p in parts {
        let digest = base64::engine::general_purpose::STANDARD
            .decode(&p.checksum)
            .ok()
            .filter(|d| d.len() == algorithm.len())
            .ok_or_else(|| {
                UploadError::Local(format!(
                    "part {}: saved checksum {:?} is not a base64 {algorithm:?}",
                    p.number, p.checksum
                ))
            })?;
        raw.extend_from_slice(&digest);
    }
    Ok(format!("{}-{}", algorithm.of(&raw), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(algorithm: PartChecksum, number: i32, bytes: &[u8]) -> DonePart {
        DonePart {
            number,
            etag: String::new(),
            checksum: algorithm.of(bytes),
        }
    }

    #[test]
    fn composite_of_parts_is_the_checksum_of_the_part_checksums() {
        // A 20 MiB + 3 byte object in 8 MiB parts, computed the long way: the checksum of the
        // concatenated raw part checksums, then "-N".
        let data: Vec<u8> = (0..20 * MIB + 3).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(8 * MIB as usize).collect();
        let mut outer = Sha256::new();
        let mut crcs = Vec::new();
        for c in &chunks {
            outer.update(Sha256::digest(c));
            crcs.extend_from_slice(&crc32c::crc32c(c).to_be_bytes());
        }
        for (algorithm, want) in [
            (
                PartChecksum::Sha256,
                format!("{}-3", b64(&outer.finalize())),
            ),
            (
                PartChecksum::Crc32c,
                format!("{}-3", b64(&crc32c::crc32c(&crcs).to_be_bytes())),
            ),
        ] {
            let parts: Vec<DonePart> = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| part(algorithm, i as i32 + 1, c))
                .collect();
            assert_eq!(composite_of_parts(algorithm, &parts).unwrap(), want);
            // Order matters: S3 combines the parts by number.
            let mut swapped = parts.clone();
            swapped.swap(0, 1);
            assert_ne!(composite_of_parts(algorithm, &swapped).unwrap(), want);
        }
    }

    #[test]
    fn crc32c_is_the_castagnoli_crc() {
        // RFC 3720's check value for "123456789", as S3 sends it (big-endian, base64).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(PartChecksum::Crc32c.of(b"123456789"), "4waSgw==");
    }

    #[test]
    fn a_saved_part_checksum_of_the_wrong_kind_is_an_error() {
        for (algorithm, bad) in [
            (PartChecksum::Sha256, ""),
            (PartChecksum::Sha256, "not base64!"),
            (PartChecksum::Sha256, "4waSgw=="),
            (PartChecksum::Crc32c, "AAAA"),
            (PartChecksum::Crc32c, &b64(&[0u8; 32])),
        ] {
            let p = DonePart {
                number: 2,
                etag: String::new(),
                checksum: bad.to_owned(),
            };
            let err = composite_of_parts(algorithm, &[part(algorithm, 1, b"x"), p]).unwrap_err();
            assert!(
                err.to_string().contains("part 2"),
                "{algorithm:?} {bad}: {err}"
            );
        }
    }
}
