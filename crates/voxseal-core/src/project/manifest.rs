//! The manifest: everything about a sample except the sample itself.
//!
//! It travels in the clear next to the ciphertexts (and is uploaded last), so it holds no
//! biometric content: ids, times, durations, rates, parameters, quality measures, sizes and
//! SHA-256s of the ciphertexts, and the app version. Versioned by `schema`; readers refuse
//! versions they do not know. Since `/2` every field but the payload list and the frame count
//! is also sealed inside each payload ([`crate::sealing::binding`]), so an edited manifest is detected.

use serde::{Deserialize, Serialize};

use crate::capture::audio::SourceInfo;
use crate::dsp::features::FeatureParams;
use crate::dsp::quality::QualityReport;
use crate::project::ids::{ContractorId, PromptId, SampleId, TakeId};

/// The schema identifier this code writes and reads.
pub const SCHEMA: &str = "voxseal.manifest/2";

/// A sealed sample's manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The sample.
    pub sample_id: SampleId,
    /// The take it was made from.
    pub take_id: TakeId,
    /// The prompt read, if any.
    pub prompt_id: Option<PromptId>,
    /// The earlier sample of the same prompt this one replaces (a re-recording).
    pub supersedes: Option<SampleId>,
    /// Who recorded it.
    pub contractor: ContractorId,
    /// The project's name.
    pub project: String,
    /// SHA-256 (hex) of the signed project config (the installed `project.toml` bytes) that
    /// sealed it.
    pub config_sha256: String,
    /// The local audit log's head when sealing began, so a verifier holding this manifest can
    /// tell whether the log was later cut or rewritten.
    pub audit_anchor: AuditAnchor,
    /// When recording started (RFC 3339 UTC).
    pub recorded_at: String,
    /// When it was sealed (RFC 3339 UTC).
    pub sealed_at: String,
    /// Voxseal's version.
    pub app_version: String,
    /// Where the audio came from.
    pub source: SourceInfo,
    /// The raw audio's shape.
    pub audio: AudioInfo,
    /// How features were computed and their shape.
    pub features: FeaturesInfo,
    /// The quality report of the whole take.
    pub quality: QualityReport,
    /// Names of failing checks the contractor accepted anyway.
    pub accepted_despite: Vec<String>,
    /// The consent the contractor gave, if recorded.
    pub consent: Option<Consent>,
    /// True when raw audio was not sealed.
    pub features_only: bool,
    /// The sealed files.
    pub payloads: Vec<Payload>,
}

/// The raw audio's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioInfo {
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Samples in the sealed audio (after trimming).
    pub samples: u64,
    /// Seconds in the sealed audio.
    pub duration_s: f64,
    /// `[start, end)` of the take that was kept, in samples.
    pub kept: (u64, u64),
    /// Samples in the whole take.
    pub take_samples: u64,
    /// Samples the capture dropped (the recorder fell behind).
    pub dropped_samples: u64,
    /// Why the take ended early (device lost), if it did.
    pub interrupted: Option<String>,
    /// Sample format of the sealed WAV.
    pub wav_format: String,
}

/// Feature parameters and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesInfo {
    /// The parameters used.
    pub params: FeatureParams,
    /// Frames computed.
    pub frames: u64,
}

/// A contractor's recorded consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// SHA-256 of the consent text they accepted.
    pub text_sha256: String,
    /// When (RFC 3339 UTC).
    pub accepted_at: String,
}

impl Consent {
    /// SHA-256 (hex) of a consent text's UTF-8 bytes, as in [`Consent::text_sha256`].
    pub fn sha256_of(text: &str) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// Consent to `text`, given now.
    pub fn given_now(text: &str) -> Self {
        Self {
            text_sha256: Self::sha256_of(text),
            accepted_at: crate::time::now_rfc3339(),
        }
    }
}

/// A point in the audit log's hash chain: the line with `seq` has hash `hash` (`seq` 0 and 64
/// zeros: the log was empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAnchor {
    /// The line's sequence number.
    pub seq: u64,
    /// The line's hash, hex.
    pub hash: String,
}

/// Kinds of payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// The raw WAV, sealed to the archive recipients.
    Raw,
    /// The features, sealed to the training recipients.
    Features,
}

impl PayloadKind {
    /// The file name in an outbox item.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Raw => "raw.wav.age",
            Self::Features => "features.safetensors.age",
        }
    }

    /// The plaintext's extension.
    pub fn plain_extension(self) -> &'static str {
        match self {
            Self::Raw => "wav",
            Self::Features => "safetensors",
        }
    }

    /// `raw` or `features`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Features => "features",
        }
    }
}

/// One sealed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// What it holds.
    pub kind: PayloadKind,
    /// File name in the outbox item.
    pub file: String,
    /// Ciphertext size, bytes.
    pub size: u64,
    /// Ciphertext SHA-256, hex.
    pub sha256: String,
    /// The age recipients it is sealed to.
    pub recipients: Vec<String>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON, or fields missing, unknown or malformed.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// A schema this version does not know.
    #[error("manifest schema {0} is not supported by this version of Voxseal ({SCHEMA})")]
    UnsupportedSchema(String),
}

impl Manifest {
    /// Parses and checks a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        #[derive(Deserialize)]
        struct Probe {
            schema: Option<String>,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        match probe.schema.as_deref() {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(ManifestError::UnsupportedSchema(
                    crate::project::ids::shown(other),
                ));
            }
            None => return Err(ManifestError::Invalid("missing field `schema`".into())),
        }
        let m: Self =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        let is_hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hex64(&m.config_sha256) || !is_hex64(&m.audit_anchor.hash) {
            return Err(ManifestError::Invalid(
                "config_sha256 and audit_anchor.hash must be 64 hex digits".into(),
            ));
        }
        let mut kinds = std::collections::HashSet::new();
        for p in &m.payloads {
            if !kinds.insert(p.kind) {
                return Err(ManifestError::Invalid(format!(
                    "two {} payloads",
                    p.kind.as_str()
                )));
            }
            if p.file != p.kind.file_name() {
                return Err(ManifestError::Invalid(format!(
                    "payload file {} is not {}",
                    crate::project::ids::shown(&p.file),
                    p.kind.file_name()
                )));
            }
            if !is_hex64(&p.sha256) {
                return Err(ManifestError::Invalid(
                    "a payload sha256 is not 64 hex digits".into(),
                ));
            }
        }
        if !kinds.contains(&PayloadKind::Features) {
            return Err(ManifestError::Invalid("no features payload".into()));
        }
        if m.features_only == kinds.contains(&PayloadKind::Raw) {
            return Err(ManifestError::Invalid(
                "features_only disagrees with the payloads".into(),
            ));
        }
        Ok(m)
    }

    /// The payload of a kind, if sealed.
    pub fn payload(&self, kind: PayloadKind) -> Option<&Payload> {
        self.payloads.iter().find(|p| p.kind == kind)
    }
}
