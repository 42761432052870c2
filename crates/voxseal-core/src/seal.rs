//! Sealing: a reviewed take becomes an outbox item of age ciphertexts plus a manifest.
//!
//! The raw take (trimmed to speech plus margin) is written as 16-bit WAV straight into an age
//! encryptor for the *archive* recipients; its features are streamed as safetensors into an age
//! encryptor for the *training* recipients. Plaintext never touches disk: it flows from the spool
//! (decrypted chunk by chunk) through the encoders into the encryptors. Each ciphertext's SHA-256
//! is computed as it is written and recorded in the manifest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::audit::AuditLog;
use crate::config::ProjectConfig;
use crate::features;
use crate::ids::{ContractorId, PromptId, SampleId};
use crate::manifest::{AudioInfo, Consent, FeaturesInfo, Manifest, Payload, PayloadKind, SCHEMA};
use crate::outbox::{ItemState, Outbox, OutboxItem};
use crate::pcm::{PcmReplay, Window};
use crate::quality::{QualityReport, Verdict};
use crate::recorder::RecordedTake;
use crate::wav::Pcm16Writer;

/// Why sealing failed. Nothing half-written is left in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The take failed a quality check and was not explicitly accepted.
    #[error("the take failed quality checks ({0}); re-record it, or accept it explicitly")]
    QualityFailed(String),
    /// The take has no audio.
    #[error("the take is empty")]
    Empty,
    /// No recipients for a payload.
    #[error("no {0} recipients in the project config")]
    NoRecipients(&'static str),
    /// Reading the spool, encrypting or writing failed.
    #[error("sealing failed while writing {what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The outbox could not be written.
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    /// The audit log could not be written.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// Size and SHA-256 of a sealed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFile {
    /// Ciphertext bytes.
    pub size: u64,
    /// Ciphertext SHA-256, hex.
    pub sha256: String,
}

/// Counts and hashes what passes through to the inner writer.
///
/// The SHA-256 runs on a second thread, fed copies of the written buffers through a short
/// bounded queue (buffers are recycled), so hashing overlaps encryption instead of adding to it:
/// on two cores sealing runs at the speed of the slower of the two, not their sum.
pub struct HashingWriter<W> {
    inner: W,
    size: u64,
    to_hasher: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    recycled: std::sync::mpsc::Receiver<Vec<u8>>,
    hasher: Option<std::thread::JoinHandle<[u8; 32]>>,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let hasher = std::thread::Builder::new()
            .name("voxseal-sha256".into())
            .spawn(move || {
                let mut h = Sha256::new();
                for buf in rx {
                    h.update(&buf);
                    let _ = back_tx.send(buf);
                }
                h.finalize().into()
            })
            .expect("spawning the hashing thread");
        Self {
            inner,
            size: 0,
            to_hasher: Some(tx),
            recycled: back_rx,
            hasher: Some(hasher),
        }
    }

    /// Returns the inner writer and `(size, sha256 hex)`.
    pub fn finish(mut self) -> (W, SealedFile) {
        drop(self.to_hasher.take());
        let digest = self
            .hasher
            .take()
            .expect("present until finish")
            .join()
            .expect("the hashing thread panicked");
        let HashingWriter { inner, size, .. } = self;
        (
            inner,
            SealedFile {
                size,
                sha256: hex::encode(digest),
            },
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut copy = self.recycled.try_recv().unwrap_or_default();
        copy.clear();
        copy.extend_from_slice(&buf[..n]);
        self.to_hasher
            .as_ref()
            .expect("present until finish")
            .send(copy)
            .map_err(|_| io::Error::other("the hashing thread stopped"))?;
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts whatever `write` produces to `recipients` in the age format, streaming into
/// `out`; returns `write`'s result and the ciphertext's size and SHA-256.
pub fn seal_to_writer<W: Write, T>(
    out: W,
    recipients: &[age::x25519::Recipient],
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<(T, W, SealedFile)> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut sealed = encryptor.wrap_output(HashingWriter::new(out))?;
    let value = write(&mut sealed)?;
    let hashing = sealed.finish()?;
    let (inner, file) = hashing.finish();
    Ok((value, inner, file))
}

/// [`seal_to_writer`] into a new file (mode 0600, fsynced).
pub fn seal_to_file<T>(
    path: &Path,
    recipients: &[age::x25519::Recipient],
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<(T, SealedFile)> {
    let file = crate::fsutil::create_new(path, true)?;
    let (value, out, sealed) = seal_to_writer(
        BufWriter::with_capacity(256 * 1024, file),
        recipients,
        write,
    )?;
    let file: File = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((value, sealed))
}

/// The contractor's decisions about a take.
#[derive(Debug, Clone, Default)]
pub struct Review {
    /// The prompt that was read.
    pub prompt_id: Option<PromptId>,
    /// The earlier sample this one replaces.
    pub supersedes: Option<SampleId>,
    /// Accept even though a check failed.
    pub accept_failed: bool,
    /// Consent on record.
    pub consent: Option<Consent>,
}

/// Sealing progress, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealProgress {
    /// `raw` or `features`.
    pub stage: &'static str,
    /// Units done (samples for raw, frames over three passes for features).
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// What sealing needs from its surroundings.
pub struct SealContext<'a> {
    /// The project config (recipients, parameters).
    pub config: &'a ProjectConfig,
    /// Who recorded.
    pub contractor: &'a ContractorId,
    /// Where the item goes.
    pub outbox: &'a Outbox,
    /// Where events go.
    pub audit: &'a AuditLog,
}

/// Seals a take into a new outbox item. The take's spool is left alone: the caller wipes it
/// (see [`crate::workspace::Workspace::accept_take`]).
pub fn seal_take(
    ctx: &SealContext<'_>,
    take: &RecordedTake,
    quality: &QualityReport,
    review: &Review,
    progress: &mut dyn FnMut(SealProgress),
) -> Result<OutboxItem, SealError> {
    let failed: Vec<&str> = quality
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.name.as_str())
        .collect();
    if !failed.is_empty() && !review.accept_failed {
        let reasons: Vec<&str> = quality
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.reason.as_str())
            .collect();
        return Err(SealError::QualityFailed(reasons.join("; ")));
    }
    let audio: &dyn PcmReplay = &take.spool;
    if audio.is_empty() {
        return Err(SealError::Empty);
    }
    let cfg = ctx.config;
    let (start, end) = if cfg.capture.trim_silence {
        quality.trim
    } else {
        (0, audio.len())
    };
    let kept = Window::new(audio, start, end.saturating_sub(start));
    if kept.is_empty() {
        return Err(SealError::Empty);
    }
    let sample_id = SampleId::generate();
    let staging = ctx.outbox.staging(&sample_id)?;
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| SealError::Io { what, source }
    };

    let mut payloads = Vec::new();
    if !cfg.capture.features_only {
        let recipients = cfg.archive_recipients();
        if recipients.is_empty() {
            return Err(SealError::NoRecipients("archive"));
        }
        let total = kept.len();
        let ((), sealed) = seal_to_file(
            &staging.path(PayloadKind::Raw.file_name()),
            &recipients,
            |w| {
                let mut wav = Pcm16Writer::new(w, kept.sample_rate(), total)?;
                let mut reader = kept.open()?;
                let mut buf = zeroize::Zeroizing::new(vec![0f32; 16 * 1024]);
                let mut done = 0;
                loop {
                    let n = reader.read_pcm(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    wav.write(&buf[..n])?;
                    done += n as u64;
                    progress(SealProgress {
                        stage: "raw",
                        done,
                        total,
                    });
                }
                wav.finish().map(|_| ())
            },
        )
        .map_err(io("the raw audio"))?;
        payloads.push(Payload {
            kind: PayloadKind::Raw,
            file: PayloadKind::Raw.file_name().into(),
            size: sealed.size,
            sha256: sealed.sha256,
            recipients: cfg.recipients.archive.clone(),
        });
        crate::fault::point("seal.raw");
    }

    let recipients = cfg.training_recipients();
    if recipients.is_empty() {
        return Err(SealError::NoRecipients("training"));
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_owned(), "voxseal.features/1".to_owned());
    meta.insert("sample_id".to_owned(), sample_id.to_string());
    if let Some(p) = &review.prompt_id {
        meta.insert("prompt_id".to_owned(), p.to_string());
    }
    let frames_total = 3 * cfg.features.frames_for(crate::resample::output_len(
        kept.len(),
        kept.sample_rate(),
        cfg.features.sample_rate,
    ));
    let (summary, sealed) = seal_to_file(
        &staging.path(PayloadKind::Features.file_name()),
        &recipients,
        |w| {
            features::write_safetensors_with_progress(&kept, &cfg.features, &meta, w, &mut |done| {
                progress(SealProgress {
                    stage: "features",
                    done,
                    total: frames_total,
                })
            })
        },
    )
    .map_err(io("the features"))?;
    payloads.push(Payload {
        kind: PayloadKind::Features,
        file: PayloadKind::Features.file_name().into(),
        size: sealed.size,
        sha256: sealed.sha256,
        recipients: cfg.recipients.training.clone(),
    });
    crate::fault::point("seal.features");

    let manifest = Manifest {
        schema: SCHEMA.into(),
        sample_id: sample_id.clone(),
        take_id: take.take_id.clone(),
        prompt_id: review.prompt_id.clone(),
        supersedes: review.supersedes.clone(),
        contractor: ctx.contractor.clone(),
        project: cfg.project.name.clone(),
        recorded_at: take.started_at.clone(),
        sealed_at: crate::time::now_rfc3339(),
        app_version: crate::VERSION.into(),
        source: take.source.clone(),
        audio: AudioInfo {
            sample_rate: kept.sample_rate(),
            samples: kept.len(),
            duration_s: kept.len() as f64 / kept.sample_rate() as f64,
            kept: (start, start + kept.len()),
            take_samples: audio.len(),
            dropped_samples: take.counters.dropped,
            interrupted: take.interrupted.clone(),
            wav_format: "pcm_s16le mono".into(),
        },
        features: FeaturesInfo {
            params: cfg.features.clone(),
            frames: summary.frames,
        },
        quality: quality.clone(),
        accepted_despite: failed.iter().map(|s| (*s).to_owned()).collect(),
        consent: review.consent.clone(),
        features_only: cfg.capture.features_only,
        payloads,
    };
    let mpath = staging.path(crate::outbox::MANIFEST_FILE);
    crate::fsutil::write_json_atomic(&mpath, &manifest).map_err(io("the manifest"))?;
    let state = ItemState::sealed();
    let spath = staging.path(crate::outbox::STATE_FILE);
    crate::fsutil::write_json_atomic(&spath, &state).map_err(io("the item state"))?;
    crate::fault::point("seal.commit");
    let dir = staging.commit()?;
    let logged = ctx.audit.append(
        "take.sealed",
        serde_json::json!({
            "sample": sample_id,
            "take": take.take_id,
            "prompt": review.prompt_id,
            "supersedes": review.supersedes,
            "accepted_despite": manifest.accepted_despite,
            "payloads": manifest.payloads.iter().map(|p| serde_json::json!({
                "kind": p.kind, "size": p.size, "sha256": p.sha256,
            })).collect::<Vec<_>>(),
        }),
    );
    if let Err(e) = logged {
        // An item the audit log does not know about must not stay (a full disk fails the append
        // after the commit): undo the commit, so the error is the whole truth and the caller
        // keeps the take to accept again. Only ciphertext is removed.
        let _ = crate::wipe::wipe_tree(&dir);
        return Err(e.into());
    }
    Ok(OutboxItem {
        dir,
        manifest,
        state,
    })
}

#[cfg(test)]
mod hashing_tests {
    use super::*;

    #[test]
    fn threaded_hash_equals_a_direct_hash() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = HashingWriter::new(Vec::new());
        for part in data.chunks(65_552) {
            w.write_all(part).unwrap();
        }
        let (inner, sealed) = w.finish();
        assert_eq!(inner, data);
        assert_eq!(sealed.size, data.len() as u64);
        assert_eq!(sealed.sha256, hex::encode(Sha256::digest(&data)));
        let (_, empty) = HashingWriter::new(Vec::new()).finish();
        assert_eq!(empty.sha256, hex::encode(Sha256::digest(b"")));
    }
}
