//! Drains the outbox into S3.
//!
//! Per item: the payloads first (raw audio and features at the same time, sharing one budget of
//! parts in flight), the manifest last, so a manifest in the bucket means its payloads are there.
//! Each object is written with SSE-KMS under the project key, a checksum, and `If-None-Match: *`
//! (never overwrite). Small objects use PutObject with the whole ciphertext's SHA-256 from the
//! manifest (nothing to compute); larger ones a multipart upload with parts of at least 8 MiB and
//! CRC32C part checksums, whose upload id and acknowledged parts are saved in the item's
//! `state.json` after every part, so an interrupted upload resumes (ListParts) instead of starting
//! over. A crash between
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

mod checksum;
mod multipart;
mod network;
mod object;
mod part_plan;

pub use network::WAITING_AFTER;

use std::path::Path;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use sha2::{Digest, Sha256};
use voxseal_core::store::audit::{AuditEvent, AuditLog, Checkpoint};
use voxseal_core::store::audit_event::ObjectLogged;
use voxseal_core::store::outbox::{ItemStatus, Outbox, OutboxItem};

use crate::object_key::checkpoint_key;
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
    /// Defaults: multipart above 16 MiB, 8 MiB parts, 2 in flight (chosen by measurement over
    /// emulated home uplinks and loopback: docs/performance.md).
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
            parallel_parts: 2,
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
    /// No byte has left for [`WAITING_AFTER`](network::WAITING_AFTER): the network is gone (a
    /// dropped Wi-Fi, a sleeping hotspot), and the upload goes on when it is back.
    pub waiting_for_network: bool,
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
    sent: network::SentBytes,
}

/// How long a request may make no progress before it is given up (then retried or resumed).
pub const STALL_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest one request may take: an 8 MiB part shares a 2 Mbit/s uplink with three others
/// for over two minutes, so this bounds only a request that trickles without stalling.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

fn build_client(cfg: &UploadConfig, provider: &CachingProvider) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{
        BehaviorVersion, IdentityCache, Region, RequestChecksumCalculation,
        ResponseChecksumValidation, StalledStreamProtectionConfig, retry::RetryConfig,
        timeout::TimeoutConfig,
    };
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .credentials_provider(provider.clone())
        // Our provider caches and refreshes; the SDK asks it before every request.
        .identity_cache(IdentityCache::no_cache())
        // We send the checksums ourselves, as headers (SHA-256 for objects, CRC32C for parts).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        // A response whose stream stalls is cut after STALL_GRACE, not the SDK's 5 s: a home
        // uplink drops out for tens of seconds (Wi-Fi roaming, a hotspot's handover) and TCP
        // carries the request on afterwards, where cutting it would send its part again. Request
        // bodies are not watched by the SDK: on a slow link they wait on a full socket for longer
        // than that after an outage (TCP's retransmission backoff); the drain watches them
        // itself and says when it waits for the network (network.rs, docs/uplink.md).
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .upload_enabled(false)
                .grace_period(STALL_GRACE)
                .build(),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
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
            sent: network::SentBytes::default(),
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
        let last = std::sync::Mutex::new(UploadProgress::default());
        let last = || {
            last.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let acknowledged = |mut p: UploadProgress| {
            p.waiting_for_network = last().waiting_for_network;
            *last() = p.clone();
            progress(p);
        };
        let watch = async {
            let mut watch = network::StallWatch::new(&self.sent, std::time::Instant::now());
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let waiting = watch.waiting(&self.sent, std::time::Instant::now());
                let changed = {
                    let mut p = last();
                    let changed = p.waiting_for_network != waiting;
                    p.waiting_for_network = waiting;
                    changed.then(|| p.clone())
                };
                if let Some(p) = changed {
                    progress(p);
                }
            }
        };
        let report = tokio::select! {
            report = self.drain_items(&acknowledged) => report,
            () = watch => unreachable!("the watch never ends"),
        };
        // The run is over: whatever it last said, it no longer waits.
        let ended = {
            let mut p = last();
            std::mem::take(&mut p.waiting_for_network).then(|| p.clone())
        };
        if let Some(p) = ended {
            progress(p);
        }
        let mut report = report?;
        if report.offline.is_none() && self.checkpoint_due() {
            match self.checkpoint().await {
                Ok(key) => report.checkpoint = Some(key),
                Err(e) => {
                    let _ = self.audit.append(&AuditEvent::AuditCheckpointFailed {
                        error: e.to_string(),
                    });
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
        let _ = self.audit.append(&AuditEvent::AuditCheckpointed {
            key: key.clone(),
            seq: head.seq,
            hash: head.hash.clone(),
        });
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
            let objects = &item.state.objects;
            let _ = self.audit.append(&AuditEvent::UploadResumed {
                sample: item.manifest.sample_id.clone(),
                attempt: item.state.attempts + 1,
                objects_done: (objects.iter().filter(|(_, o)| o.done))
                    .map(|(k, _)| k.clone())
                    .collect(),
                parts_done: (objects.values().filter_map(|o| o.multipart.as_ref()))
                    .map(|m| m.parts.len())
                    .sum(),
            });
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
                let objects = (item.state.objects.iter())
                    .map(|(k, o)| {
                        let logged = ObjectLogged {
                            key: o.key.clone(),
                            checksum: o.confirmed_checksum.clone(),
                            already_existed: o.already_existed,
                        };
                        (k.clone(), logged)
                    })
                    .collect();
                let _ = self.audit.append(&AuditEvent::ItemUploaded {
                    sample: item.manifest.sample_id.clone(),
                    objects,
                });
            }
            Err(e) => {
                item.state.status = if e.is_transient() {
                    ItemStatus::Uploading
                } else {
                    ItemStatus::Failed
                };
                item.state.last_error = Some(e.to_string());
                self.save(item)?;
                let (sample, error) = (item.manifest.sample_id.clone(), e.to_string());
                let _ = self.audit.append(&if e.is_transient() {
                    AuditEvent::UploadInterrupted { sample, error }
                } else {
                    AuditEvent::UploadFailed { sample, error }
                });
            }
        }
        result
    }

    fn save(&self, item: &mut OutboxItem) -> Result<(), UploadError> {
        self.outbox
            .save_state(item)
            .map_err(|e| UploadError::Local(e.to_string()))
    }
}
