//! Multipart uploads: resumed from the item's saved state (ListParts keeps only the parts the
//! server has with the checksum recorded), parts sent concurrently within the shared budget of
//! parts in flight and saved as each is acknowledged, then completed with `If-None-Match: *`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use voxseal_core::store::audit::AuditEvent;
use voxseal_core::store::outbox::{DonePart, MultipartState};

use super::checksum::{composite_of_parts, part_checksum};
use super::part_plan::{PartPlan, part_len};
use super::{Outcome, SharedItem, UploadError, Uploader, classify};
use crate::provider::{CachingProvider, CredentialError};

/// The object a multipart upload writes.
pub(super) struct MultipartObject<'a> {
    /// Its name in the item's state (`raw`, `features`).
    pub name: &'a str,
    /// Its key in the bucket.
    pub key: &'a str,
    /// The local ciphertext.
    pub path: &'a Path,
    /// Its size.
    pub size: u64,
}

/// A progress callback: bytes of the object acknowledged so far.
pub(super) type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

impl Uploader {
    /// A multipart upload, resumed from the saved state when there is one. Returns the outcome
    /// and the COMPOSITE checksum S3 must answer: the one of the part checksums S3 acknowledged.
    pub(super) async fn multipart(
        &self,
        shared: &SharedItem<'_>,
        obj: &MultipartObject<'_>,
        parts_in_flight: &Arc<tokio::sync::Semaphore>,
        progress: Progress<'_>,
    ) -> Result<(Outcome, String), UploadError> {
        let mut mp = self.resume_or_start(shared, obj).await?;
        let plan = PartPlan::new(obj.size, mp.part_size, &mp.parts);
        let mut done_bytes = plan.done_bytes;
        progress(done_bytes);
        let mut tasks = tokio::task::JoinSet::new();
        for n in plan.todo {
            let permit = (parts_in_flight.clone().acquire_owned().await).expect("semaphore open");
            let job = self.part_job(obj, &mp, n);
            tasks.spawn(async move {
                let _permit = permit;
                job.send().await
            });
            // Collect finished parts as we go so state is saved promptly.
            while let Some(res) = tasks.try_join_next() {
                (self
                    .record_part(shared, obj, &mut mp, res, &mut done_bytes, progress)
                    .await)?;
            }
        }
        while let Some(res) = tasks.join_next().await {
            (self
                .record_part(shared, obj, &mut mp, res, &mut done_bytes, progress)
                .await)?;
        }
        mp.parts.sort_by_key(|p| p.number);
        let expected = composite_of_parts(&mp.parts)?;
        Ok((self.complete(obj.key, &mp).await?, expected))
    }

    /// The saved upload with the parts the server still has, or a new upload; saved either way.
    async fn resume_or_start(
        &self,
        shared: &SharedItem<'_>,
        obj: &MultipartObject<'_>,
    ) -> Result<MultipartState, UploadError> {
        let (saved, sample) = shared.with(|item| {
            let saved = (item.state.objects.get(obj.name)).and_then(|o| o.multipart.clone());
            (saved, item.manifest.sample_id.to_string())
        });
        let resumed = match saved {
            Some(mp) => self.still_on_server(obj.key, mp, &sample).await?,
            None => None,
        };
        let mp = match resumed {
            Some(mp) => mp,
            None => self.create_upload(obj.key).await?,
        };
        self.save_multipart(shared, obj.name, &mp)?;
        Ok(mp)
    }

    /// `mp` with only the parts the server has with the checksum we recorded; `None` when the
    /// upload no longer exists (aborted by the lifecycle rule), which is audited.
    async fn still_on_server(
        &self,
        key: &str,
        mut mp: MultipartState,
        sample: &str,
    ) -> Result<Option<MultipartState>, UploadError> {
        match self.list_parts(key, &mp.upload_id).await {
            Ok(server) => {
                mp.parts
                    .retain(|p| server.get(&p.number).is_some_and(|c| c == &p.checksum));
                Ok(Some(mp))
            }
            Err(UploadError::Refused { code, .. }) if code == "NoSuchUpload" => {
                let _ = self.audit.append(&AuditEvent::UploadRestarted {
                    sample: sample.to_owned(),
                    key: key.to_owned(),
                });
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// CreateMultipartUpload with SSE-KMS and CRC32C part checksums.
    async fn create_upload(&self, key: &str) -> Result<MultipartState, UploadError> {
        self.provider.current().await?;
        let out = (self.client.create_multipart_upload())
            .bucket(&self.cfg.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
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
        Ok(MultipartState {
            upload_id,
            part_size: self.cfg.part_size,
            parts: Vec::new(),
        })
    }

    fn save_multipart(
        &self,
        shared: &SharedItem<'_>,
        name: &str,
        mp: &MultipartState,
    ) -> Result<(), UploadError> {
        shared.with(|item| {
            item.state.objects.get_mut(name).expect("present").multipart = Some(mp.clone());
            self.save(item)
        })
    }

    /// What a task needs to send part `n`.
    fn part_job(&self, obj: &MultipartObject<'_>, mp: &MultipartState, n: i32) -> PartJob {
        PartJob {
            client: self.client.clone(),
            provider: self.provider.clone(),
            bucket: self.cfg.bucket.clone(),
            key: obj.key.to_owned(),
            upload_id: mp.upload_id.clone(),
            path: obj.path.to_owned(),
            size: obj.size,
            part_size: mp.part_size,
            n,
            sent: self.sent.clone(),
        }
    }

    /// Adds an acknowledged part to the state, saves it and reports progress.
    async fn record_part(
        &self,
        shared: &SharedItem<'_>,
        obj: &MultipartObject<'_>,
        mp: &mut MultipartState,
        res: Result<PartResult, tokio::task::JoinError>,
        done_bytes: &mut u64,
        progress: Progress<'_>,
    ) -> Result<(), UploadError> {
        let (part, len) = match res {
            Ok(Ok(x)) => x,
            Ok(Err((n, e))) => return Err(e.into_upload_error(obj.key, n, &self.provider).await),
            Err(e) => {
                return Err(UploadError::Local(format!(
                    "a part upload task failed: {e}"
                )));
            }
        };
        mp.parts.push(part);
        *done_bytes += len;
        progress(*done_bytes);
        self.save_multipart(shared, obj.name, mp)?;
        voxseal_core::fault::point("upload.part");
        Ok(())
    }

    /// CompleteMultipartUpload with `If-None-Match: *`; when the object is already there (an
    /// earlier attempt stored it), our parts are aborted.
    async fn complete(&self, key: &str, mp: &MultipartState) -> Result<Outcome, UploadError> {
        let parts: Vec<CompletedPart> = (mp.parts.iter())
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(&p.etag)
                    .checksum_crc32_c(&p.checksum)
                    .build()
            })
            .collect();
        self.provider.current().await?;
        let res = (self.client.complete_multipart_upload())
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
        match res {
            Ok(out) => {
                voxseal_core::fault::point("upload.completed");
                Ok(Outcome::Stored {
                    checksum: out.checksum_crc32_c,
                })
            }
            Err(e) => {
                let r = (self.conditional_failure("CompleteMultipartUpload", key, e)).await;
                if matches!(r, Ok(Outcome::AlreadyThere)) {
                    let _ = (self.client.abort_multipart_upload())
                        .bucket(&self.cfg.bucket)
                        .key(key)
                        .upload_id(&mp.upload_id)
                        .send()
                        .await;
                }
                r
            }
        }
    }

    /// The parts the server has for an upload, with their CRC32C checksums.
    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<BTreeMap<i32, String>, UploadError> {
        let mut out = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            self.provider.current().await?;
            let page = (self.client.list_parts())
                .bucket(&self.cfg.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(|e| self.s3_error("ListParts", key, e))?;
            for p in page.parts() {
                if let (Some(n), Some(c)) = (p.part_number, p.checksum_crc32_c.clone()) {
                    out.insert(n, c);
                }
            }
            if page.is_truncated != Some(true) {
                return Ok(out);
            }
            marker = page.next_part_number_marker;
        }
    }
}

/// What a part-upload task returns: the acknowledged part and its length, or its number and why.
type PartResult = Result<(DonePart, u64), (i32, PartError)>;

/// One part to send, owned by its task.
struct PartJob {
    client: aws_sdk_s3::Client,
    provider: CachingProvider,
    bucket: String,
    key: String,
    upload_id: String,
    path: PathBuf,
    size: u64,
    part_size: u64,
    n: i32,
    sent: super::network::SentBytes,
}

impl PartJob {
    /// Reads the part, sends it with its checksum, and checks the checksum S3 answers.
    async fn send(self) -> PartResult {
        let n = self.n;
        let bytes = read_part(&self.path, self.size, self.part_size, n).await?;
        let checksum = part_checksum(&bytes);
        (self.provider.current().await).map_err(|e| (n, PartError::Credentials(e)))?;
        let len = bytes.len() as u64;
        let out = (self.client.upload_part())
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(n)
            .checksum_crc32_c(&checksum)
            .body(self.sent.count(ByteStream::from(bytes)))
            .customize()
            // As in `put`: the signed checksum header covers the body.
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| (n, PartError::from_sdk(e)))?;
        if let Some(got) = &out.checksum_crc32_c
            && got != &checksum
        {
            return Err((n, PartError::Mismatch(got.clone(), checksum)));
        }
        let etag = out.e_tag.unwrap_or_default();
        Ok((
            DonePart {
                number: n,
                etag,
                checksum,
            },
            len,
        ))
    }
}

/// Why a part failed, as its task reports it.
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
