//! One item's objects: both payloads at once within one budget of parts in flight, then the
//! manifest; each object put whole or in parts, its checksum confirmed, its state saved, and a
//! payload's local ciphertext deleted once confirmed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption};
use sha2::{Digest, Sha256};
use voxseal_core::project::manifest::PayloadKind;
use voxseal_core::store::audit::AuditEvent;
use voxseal_core::store::outbox::{ObjectState, OutboxItem};

use super::multipart::{MultipartObject, Progress};
use super::{Outcome, SharedItem, UploadError, Uploader, b64, classify, delete_ciphertext};
use crate::object_key::{ObjectKind, object_key};

impl Uploader {
    pub(super) async fn upload_objects(
        &self,
        item: &mut OutboxItem,
        progress: Progress<'_>,
    ) -> Result<(), UploadError> {
        // Credentials first, once: a broker that refuses (revoked, wrong clock) is asked once,
        // not once per payload.
        self.provider.current().await?;
        let shared = SharedItem(std::sync::Mutex::new(item));
        // One budget of parts in flight for the whole item: both payloads upload at once (no idle
        // tail between them), the manifest only after both are confirmed.
        let parts_in_flight = Arc::new(tokio::sync::Semaphore::new(self.cfg.parallel_parts.max(1)));
        let done_total = AtomicU64::new(0);
        let payload = |kind: PayloadKind| {
            let (shared, parts_in_flight, done_total) = (&shared, &parts_in_flight, &done_total);
            async move {
                if shared.with(|item| item.manifest.payload(kind).is_none()) {
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
                self.upload_object(shared, ObjectKind::Payload(kind), parts_in_flight, &report)
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
        self.upload_object(&shared, ObjectKind::Manifest, &parts_in_flight, &|_| {})
            .await
    }

    /// Uploads one object of the item (or finishes what an earlier attempt left), confirms the
    /// checksum S3 returns, saves the state and deletes the local ciphertext of a payload.
    async fn upload_object(
        &self,
        shared: &SharedItem<'_>,
        kind: ObjectKind,
        parts_in_flight: &Arc<tokio::sync::Semaphore>,
        progress: Progress<'_>,
    ) -> Result<(), UploadError> {
        let name = kind.state_name();
        let ObjectToSend {
            key,
            path,
            size,
            payload_sha,
            done,
        } = shared.with(|item| object_to_send(item, kind))?;
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
            let obj = MultipartObject {
                name,
                key: &key,
                path: &path,
                size,
            };
            self.multipart(shared, &obj, parts_in_flight, progress)
                .await?
        } else {
            let expected =
                b64(&hex::decode(&sha_hex).map_err(|e| UploadError::Local(e.to_string()))?);
            let body = ByteStream::from_path(&path)
                .await
                .map_err(|e| UploadError::Local(format!("{}: {e}", path.display())))?;
            (self.put(&key, body, &expected).await?, expected)
        };
        shared.with(|item| self.record_outcome(item, name, key, outcome, expected))?;
        // Ciphertext goes only once the server has confirmed it; the manifest stays as the record.
        if is_payload {
            delete_ciphertext(&path)?;
            voxseal_core::fault::point("upload.deleted");
            progress(size);
        }
        Ok(())
    }

    pub(super) async fn put(
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
            .body(self.sent.count(body))
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

    pub(super) async fn conditional_failure<
        E: ProvideErrorMetadata + std::error::Error + 'static,
    >(
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

    /// Records what S3 answered for object `name` of `item` and saves the state; a checksum
    /// that is not ours is an error, as is a 412 on a key whose earlier store was unconfirmed.
    fn record_outcome(
        &self,
        item: &mut OutboxItem,
        name: &str,
        key: String,
        outcome: Outcome,
        expected: String,
    ) -> Result<(), UploadError> {
        let sample = item.manifest.sample_id.to_string();
        let obj = item
            .state
            .objects
            .get_mut(name)
            .expect("inserted by object_to_send");
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
                let _ = self.audit.append(&AuditEvent::UploadAlreadyStored {
                    sample: sample.clone(),
                    key: key.to_owned(),
                });
            }
        }
        voxseal_core::fault::point("upload.stored");
        self.save(item)?;
        voxseal_core::fault::point("upload.saved");
        Ok(())
    }
}

/// What [`Uploader::upload_object`] needs to know about one object of an item.
struct ObjectToSend {
    key: String,
    path: PathBuf,
    /// A payload's size from the manifest (0 for the manifest itself).
    size: u64,
    /// A payload's SHA-256 (hex) from the manifest.
    payload_sha: Option<String>,
    /// Done already, and whether that was confirmed (so the local copy may go).
    done: Option<bool>,
}

/// The object `kind` of `item`, with its state entry made if missing; an entry naming another key
/// than the manifest gives is an error.
fn object_to_send(item: &mut OutboxItem, kind: ObjectKind) -> Result<ObjectToSend, UploadError> {
    let name = kind.state_name();
    let key = object_key(&item.manifest, kind);
    let obj = (item.state.objects.entry(name.to_owned())).or_insert_with(|| ObjectState {
        key: key.clone(),
        ..Default::default()
    });
    if obj.key != key {
        return Err(UploadError::Local(format!(
            "{name}: state names key {} but the manifest gives {key}",
            obj.key
        )));
    }
    let done = (obj.done).then(|| obj.confirmed_checksum.is_some() || obj.already_existed);
    Ok(match kind {
        ObjectKind::Payload(k) => {
            let p = item.manifest.payload(k).expect("checked by the caller");
            let path = item.dir.join(&p.file);
            let (size, payload_sha) = (p.size, Some(p.sha256.clone()));
            ObjectToSend {
                key,
                path,
                size,
                payload_sha,
                done,
            }
        }
        ObjectKind::Manifest => {
            let path = item.dir.join(voxseal_core::store::outbox::MANIFEST_FILE);
            ObjectToSend {
                key,
                path,
                size: 0,
                payload_sha: None,
                done,
            }
        }
    })
}
