//! Sealing: a reviewed take becomes an outbox item of age ciphertexts plus a manifest.
//!
//! The raw take (trimmed to speech plus margin) is written as 16-bit WAV straight into an age
//! encryptor for the *archive* recipients; its features are streamed as safetensors into an age
//! encryptor for the *training* recipients. Plaintext never touches disk: it flows from the spool
//! (decrypted chunk by chunk) through the encoders into the encryptors. Each ciphertext's SHA-256
//! is computed as it is written and recorded in the manifest.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use crate::capture::recorder::RecordedTake;
use crate::dsp::features;
use crate::dsp::pcm::{PcmReplay, Window};
use crate::dsp::quality::{QualityReport, Verdict};
use crate::project::config::ProjectConfig;
use crate::project::ids::{ContractorId, PromptId, SampleId};
use crate::project::manifest::{
    AudioInfo, Consent, FeaturesInfo, Manifest, Payload, PayloadKind, SCHEMA,
};
use crate::sealing::age_writer::{AgeWriter, SealedOut};
use crate::sealing::wav::Pcm16Writer;
use crate::store::audit::{AuditEvent, AuditLog};
use crate::store::outbox::{ItemState, Outbox, OutboxItem};

/// Why sealing failed. Nothing half-written is left in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
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
    Outbox(#[from] crate::store::outbox::OutboxError),
    /// The audit log could not be written.
    #[error(transparent)]
    Audit(#[from] crate::store::audit::AuditError),
    /// The installed project config is not the one the take was reviewed under.
    #[error(
        "the installed project config changed while the take was under review ({0}); nothing was sealed: start again"
    )]
    ConfigChanged(String),
}

/// Size and SHA-256 of a sealed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFile {
    /// Ciphertext bytes.
    pub size: u64,
    /// Ciphertext SHA-256, hex.
    pub sha256: String,
}

/// Where the sealer's chunks go: written to `out` on the sealing thread, then passed whole (not
/// copied) to a second thread that hashes them, which hands the buffers back for reuse.
///
/// ChaCha20-Poly1305 (~2 GB/s here with AVX-512) and SHA-256 (~1.9 GB/s with SHA-NI) each take
/// much of a core, so on two cores sealing runs at the speed of the hash alone, not of their sum.
struct WriteThenHash<W> {
    out: W,
    size: u64,
    to_hasher: mpsc::SyncSender<Vec<u8>>,
    recycled: mpsc::Receiver<Vec<u8>>,
}

impl<W: Write> SealedOut for WriteThenHash<W> {
    fn put(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.out.write_all(buf)?;
        self.size += buf.len() as u64;
        let fresh = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(buf.capacity()));
        let full = std::mem::replace(buf, fresh);
        self.to_hasher
            .send(full)
            .map_err(|_| io::Error::other("the sealing hash thread stopped"))
    }
}

/// The hashing thread: the SHA-256 of everything `from_sealer` delivers, in order.
fn hash_all(from_sealer: mpsc::Receiver<Vec<u8>>, recycle: mpsc::Sender<Vec<u8>>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for buf in from_sealer {
        hash.update(&buf);
        // Not cleared: the sealer overwrites it (clearing would cost a memset per chunk).
        let _ = recycle.send(buf);
    }
    hash.finalize().into()
}

/// Encrypts whatever `write` produces to `recipients` in the age format ([`AgeWriter`]),
/// streaming into `out`; returns `write`'s result and the ciphertext's size and SHA-256.
///
/// `out` gets whole age chunks (64 KiB + 16), so a file needs no extra buffering; the hash runs
/// on a second thread.
pub fn seal_to_writer<W: Write, T>(
    out: W,
    recipients: &[age::x25519::Recipient],
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<(T, W, SealedFile)> {
    std::thread::scope(|scope| {
        let (to_hasher, from_sealer) = mpsc::sync_channel(8);
        let (recycle, recycled) = mpsc::channel();
        let hasher = std::thread::Builder::new()
            .name("voxseal-sha256".into())
            .spawn_scoped(scope, move || hash_all(from_sealer, recycle))?;
        let sink = WriteThenHash {
            out,
            size: 0,
            to_hasher,
            recycled,
        };
        // On an error the writer drops here, the channel closes and the hasher ends.
        let sealed = (|| -> io::Result<_> {
            let mut age = AgeWriter::new(sink, recipients)?;
            let value = write(&mut age)?;
            Ok((value, age.finish()?))
        })();
        let (value, sink) = sealed?;
        let WriteThenHash {
            mut out,
            size,
            to_hasher,
            ..
        } = sink;
        drop(to_hasher);
        let digest = hasher.join().expect("the hashing thread panicked");
        out.flush()?;
        let file = SealedFile {
            size,
            sha256: hex::encode(digest),
        };
        Ok((value, out, file))
    })
}

/// [`seal_to_writer`] into a new file (mode 0600, fsynced).
pub fn seal_to_file<T>(
    path: &Path,
    recipients: &[age::x25519::Recipient],
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<(T, SealedFile)> {
    let file = crate::store::fsutil::create_new(path, true)?;
    let (value, file, sealed) = seal_to_writer(file, recipients, write)?;
    file.sync_all()?;
    Ok((value, sealed))
}

/// What the manifest records of the contractor's review.
#[derive(Debug, Clone, Default)]
pub(crate) struct Review {
    /// The prompt that was read.
    pub prompt_id: Option<PromptId>,
    /// The earlier sample this one replaces.
    pub supersedes: Option<SampleId>,
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
pub(crate) struct SealContext<'a> {
    /// The project config (recipients, parameters).
    pub config: &'a ProjectConfig,
    /// SHA-256 (hex) of the signed config file `config` was parsed from.
    pub config_sha256: &'a str,
    /// Who recorded.
    pub contractor: &'a ContractorId,
    /// Where the item goes.
    pub outbox: &'a Outbox,
    /// Where events go.
    pub audit: &'a AuditLog,
}

/// Seals a take into a new outbox item, recording the failed checks it was accepted despite
/// (whether it may be is [`crate::store::take::TakeInReview::accept`]'s rule). The take's spool
/// is left alone: the caller wipes it.
pub(crate) fn seal_take(
    ctx: &SealContext<'_>,
    take: &RecordedTake,
    quality: &QualityReport,
    review: &Review,
    progress: &mut dyn FnMut(SealProgress),
) -> Result<OutboxItem, SealError> {
    let audio: &dyn PcmReplay = &take.spool;
    let (start, end) = if ctx.config.capture.trim_silence {
        quality.trim
    } else {
        (0, audio.len())
    };
    let kept = Window::new(audio, start, end.saturating_sub(start));
    if audio.is_empty() || kept.is_empty() {
        return Err(SealError::Empty);
    }
    let mut manifest = manifest_for(ctx, take, quality, review, &kept, start)?;
    let staging = ctx.outbox.staging(&manifest.sample_id)?;
    let mut binding =
        crate::sealing::binding::to_bytes(&manifest).map_err(io_error("the manifest binding"))?;
    if binding.len() % 2 == 1 {
        // An even-length WAV chunk needs no pad byte (which some readers forget to skip).
        binding.push(b' ');
    }
    if !ctx.config.capture.features_only {
        let path = staging.path(PayloadKind::Raw.file_name());
        let raw = seal_raw(&path, ctx.config, &kept, &binding, progress)?;
        manifest.payloads.push(raw);
        crate::fault::point("seal.raw");
    }
    let path = staging.path(PayloadKind::Features.file_name());
    let (features, frames) = seal_features(&path, ctx.config, &kept, &manifest, binding, progress)?;
    manifest.payloads.push(features);
    manifest.features.frames = frames;
    crate::fault::point("seal.features");
    commit(ctx, staging, manifest)
}

/// The manifest of a take about to be sealed, with the audit log's head as its anchor (which
/// covers everything logged before it, the take's `take.recorded` too).
fn manifest_for(
    ctx: &SealContext<'_>,
    take: &RecordedTake,
    quality: &QualityReport,
    review: &Review,
    kept: &Window<'_>,
    start: u64,
) -> Result<Manifest, SealError> {
    let cfg = ctx.config;
    let failed = (quality.checks.iter())
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.name.clone());
    Ok(Manifest {
        schema: SCHEMA.into(),
        sample_id: SampleId::generate(),
        take_id: take.take_id.clone(),
        prompt_id: review.prompt_id.clone(),
        supersedes: review.supersedes.clone(),
        contractor: ctx.contractor.clone(),
        project: cfg.project.name.clone(),
        config_sha256: ctx.config_sha256.to_owned(),
        audit_anchor: ctx.audit.head()?,
        recorded_at: take.started_at.clone(),
        sealed_at: crate::time::now_rfc3339(),
        app_version: crate::VERSION.into(),
        source: take.source.clone(),
        audio: AudioInfo {
            sample_rate: kept.sample_rate(),
            samples: kept.len(),
            duration_s: kept.len() as f64 / kept.sample_rate() as f64,
            kept: (start, start + kept.len()),
            take_samples: take.spool.len(),
            dropped_samples: take.counters.dropped,
            interrupted: take.interrupted.clone(),
            wav_format: "pcm_s16le mono".into(),
        },
        features: FeaturesInfo {
            params: cfg.features.clone(),
            frames: 0, // filled in after sealing them; not part of the binding
        },
        quality: quality.clone(),
        accepted_despite: failed.collect(),
        consent: review.consent.clone(),
        features_only: cfg.capture.features_only,
        payloads: Vec::new(),
    })
}

fn io_error(what: &str) -> impl FnOnce(io::Error) -> SealError {
    let what = what.to_owned();
    move |source| SealError::Io { what, source }
}

/// Seals the kept audio as a 16-bit WAV carrying `binding` in a chunk, to the archive recipients.
fn seal_raw(
    path: &Path,
    cfg: &ProjectConfig,
    kept: &Window<'_>,
    binding: &[u8],
    progress: &mut dyn FnMut(SealProgress),
) -> Result<Payload, SealError> {
    let recipients = cfg.archive_recipients();
    if recipients.is_empty() {
        return Err(SealError::NoRecipients("archive"));
    }
    let total = kept.len();
    let ((), sealed) = seal_to_file(path, &recipients, |w| {
        let chunk = Some((crate::sealing::binding::WAV_CHUNK, binding));
        let mut wav = Pcm16Writer::with_chunk(w, kept.sample_rate(), total, chunk)?;
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
            let stage = "raw";
            progress(SealProgress { stage, done, total });
        }
        wav.finish().map(|_| ())
    })
    .map_err(io_error("the raw audio"))?;
    Ok(Payload {
        kind: PayloadKind::Raw,
        file: PayloadKind::Raw.file_name().into(),
        size: sealed.size,
        sha256: sealed.sha256,
        recipients: cfg.recipients.archive.clone(),
    })
}

/// Extracts and seals the features (safetensors carrying `binding` in its metadata) to the
/// training recipients; returns the payload and the number of frames.
fn seal_features(
    path: &Path,
    cfg: &ProjectConfig,
    kept: &Window<'_>,
    manifest: &Manifest,
    binding: Vec<u8>,
    progress: &mut dyn FnMut(SealProgress),
) -> Result<(Payload, u64), SealError> {
    let recipients = cfg.training_recipients();
    if recipients.is_empty() {
        return Err(SealError::NoRecipients("training"));
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_owned(), "voxseal.features/1".to_owned());
    meta.insert("sample_id".to_owned(), manifest.sample_id.to_string());
    if let Some(p) = &manifest.prompt_id {
        meta.insert("prompt_id".to_owned(), p.to_string());
    }
    meta.insert(
        crate::sealing::binding::METADATA_KEY.to_owned(),
        String::from_utf8(binding).expect("JSON is UTF-8"),
    );
    let resampled =
        crate::dsp::resample::output_len(kept.len(), kept.sample_rate(), cfg.features.sample_rate);
    let total = 3 * cfg.features.frames_for(resampled);
    let (summary, sealed) = seal_to_file(path, &recipients, |w| {
        features::write_safetensors_with_progress(kept, &cfg.features, &meta, w, &mut |done| {
            let stage = "features";
            progress(SealProgress { stage, done, total })
        })
    })
    .map_err(io_error("the features"))?;
    let payload = Payload {
        kind: PayloadKind::Features,
        file: PayloadKind::Features.file_name().into(),
        size: sealed.size,
        sha256: sealed.sha256,
        recipients: cfg.recipients.training.clone(),
    };
    Ok((payload, summary.frames))
}

/// Writes the manifest and state into the staging directory, commits it as an outbox item and
/// logs `take.sealed`; an item the log does not record is undone.
fn commit(
    ctx: &SealContext<'_>,
    staging: crate::store::outbox::Staging,
    manifest: Manifest,
) -> Result<OutboxItem, SealError> {
    let mpath = staging.path(crate::store::outbox::MANIFEST_FILE);
    crate::store::fsutil::write_json_atomic(&mpath, &manifest).map_err(io_error("the manifest"))?;
    let state = ItemState::sealed();
    let spath = staging.path(crate::store::outbox::STATE_FILE);
    crate::store::fsutil::write_json_atomic(&spath, &state).map_err(io_error("the item state"))?;
    crate::fault::point("seal.commit");
    let committed = staging.commit()?;
    let dir = committed.dir.clone();
    crate::fault::point("seal.unlogged");
    let logged = ctx.audit.append(&AuditEvent::take_sealed(&manifest, false));
    drop(committed);
    if let Err(e) = logged {
        // An item the audit log does not know about must not stay (a full disk fails the append
        // after the commit): undo the commit, so the error is the whole truth and the caller
        // keeps the take to accept again. Only ciphertext is removed.
        let _ = crate::store::wipe::wipe_tree(&dir);
        return Err(e.into());
    }
    Ok(OutboxItem {
        dir,
        manifest,
        state,
    })
}

#[cfg(test)]
mod pipeline_tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_recorded_hash_and_size_are_those_of_the_bytes_written() {
        let id = age::x25519::Identity::generate();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (n, out, sealed) = seal_to_writer(Vec::new(), &[id.to_public()], |w| {
            for part in data.chunks(100_003) {
                w.write_all(part)?;
            }
            Ok(data.len())
        })
        .unwrap();
        assert_eq!(n, data.len());
        assert_eq!(sealed.size, out.len() as u64);
        assert_eq!(sealed.sha256, hex::encode(Sha256::digest(&out)));
        let mut plain = Vec::new();
        age::Decryptor::new(&out[..])
            .unwrap()
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, data);
    }

    /// Accepts `room` bytes, then fails like a full disk.
    #[derive(Debug)]
    struct FullAfter {
        room: usize,
    }
    impl Write for FullAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_output_is_the_error_reported() {
        let r = age::x25519::Identity::generate().to_public();
        let err = seal_to_writer(FullAfter { room: 300_000 }, &[r], |w| {
            w.write_all(&vec![1u8; 5_000_000])
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    }

    #[test]
    fn a_failing_producer_is_the_error_reported() {
        let r = age::x25519::Identity::generate().to_public();
        let err = seal_to_writer(Vec::new(), &[r], |w| {
            w.write_all(&[0u8; 200_000])?;
            Err::<(), _>(io::Error::new(io::ErrorKind::InvalidData, "bad spool"))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }
}
