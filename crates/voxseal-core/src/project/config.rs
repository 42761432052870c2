//! The project configuration (`project.toml`): who can decrypt, what is recorded, how it is
//! judged and where it goes. Parsed strictly (unknown keys are errors, so a typo never silently
//! falls back to a default) and validated as a whole, with errors that name the field.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dsp::features::FeatureParams;
use crate::dsp::quality::QualityThresholds;
use crate::project::ids::PromptId;

/// Why a project config was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read project config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has unknown keys or misses required ones.
    #[error("project config {path} is invalid: {detail}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said (line, column, field).
        detail: String,
    },
    /// A value is out of range or inconsistent.
    #[error("project config {path}: {detail}")]
    Invalid {
        /// The file.
        path: String,
        /// Which field and why.
        detail: String,
    },
}

/// The whole project configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project identity.
    pub project: ProjectInfo,
    /// Who can decrypt what.
    pub recipients: Recipients,
    /// What is recorded and sealed.
    #[serde(default)]
    pub capture: CaptureSettings,
    /// Where sealed samples are uploaded (absent: local only).
    #[serde(default)]
    pub storage: Option<Storage>,
    /// Quality thresholds.
    #[serde(default)]
    pub quality: QualityThresholds,
    /// Feature parameters.
    #[serde(default)]
    pub features: FeatureParams,
    /// The prompts contractors read.
    #[serde(default)]
    pub prompts: Vec<Prompt>,
}

/// Project identity and consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectInfo {
    /// The project's id: `^[a-z0-9][a-z0-9-]{2,62}$` (used in paths and object metadata). An
    /// installed project is only ever replaced by a config with the same id.
    pub name: String,
    /// Version of this signed config: every re-signed config has a higher serial, and an
    /// installation refuses one lower than the highest it has installed (no replay of an old
    /// config). Required (at least 1) when the config has `[storage]`.
    #[serde(default)]
    pub serial: u64,
    /// The config is refused after this time (RFC 3339 UTC), so an old signed config cannot be
    /// replayed forever. Required when the config has `[storage]`.
    #[serde(default)]
    pub not_after: Option<String>,
    /// The consent text a contractor accepts before recording.
    #[serde(default)]
    pub consent_text: String,
    /// Days before uploaded raw audio expires (informational here; enforced by bucket lifecycle).
    #[serde(default = "default_retention")]
    pub retention_days: u32,
}

fn default_retention() -> u32 {
    365
}

/// age recipients (`age1...`) per payload kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipients {
    /// Who can decrypt features (the data team).
    pub training: Vec<String>,
    /// Who can decrypt raw audio (an archive key kept offline). May be empty in features-only mode.
    #[serde(default)]
    pub archive: Vec<String>,
}

/// What is recorded and sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureSettings {
    /// Seal and upload features only; raw audio never leaves the spool.
    pub features_only: bool,
    /// Trim leading and trailing silence (keeping the quality margin around speech).
    pub trim_silence: bool,
    /// Seconds after which a take stops by itself.
    pub max_take_s: f64,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self {
            features_only: false,
            trim_silence: true,
            max_take_s: 120.0,
        }
    }
}

/// Upload destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// S3 bucket.
    pub bucket: String,
    /// AWS region.
    pub region: String,
    /// S3 endpoint URL (absent: AWS's default for the region).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// KMS key ARN for SSE-KMS.
    pub kms_key_arn: String,
    /// Credential broker URL: enrollment links and config updates are honoured only from it.
    pub broker_url: String,
}

/// One prompt to read aloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// Stable id.
    pub id: PromptId,
    /// The text shown to the contractor.
    pub text: String,
    /// An optional hint (pronunciation, context).
    #[serde(default)]
    pub note: Option<String>,
}

/// Parses a prompt set: CSV with a header `id,text,note` (note optional), or plain text with one
/// prompt per line (ids `p0001`, `p0002`, ...; blank lines and lines starting with `#` skipped).
pub fn parse_prompt_set(text: &str) -> Result<Vec<Prompt>, String> {
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let mut out = Vec::new();
    if first.trim().to_ascii_lowercase().starts_with("id,text") {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        for (n, rec) in rdr.records().enumerate() {
            let line = n + 2;
            let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
            let id = rec.get(0).unwrap_or_default();
            let id = id.parse().map_err(|e| format!("line {line}: {e}"))?;
            let text = rec.get(1).unwrap_or_default().to_owned();
            let note = rec.get(2).filter(|n| !n.is_empty()).map(str::to_owned);
            out.push(Prompt { id, text, note });
        }
    } else {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let id = format!("p{:04}", out.len() + 1)
                .parse()
                .expect("generated ids are valid");
            out.push(Prompt {
                id,
                text: line.to_owned(),
                note: None,
            });
        }
    }
    if out.is_empty() {
        return Err("the prompt set is empty".into());
    }
    let mut seen = std::collections::HashSet::new();
    for p in &out {
        if !seen.insert(p.id.as_str()) {
            return Err(format!("duplicate prompt id {}", p.id));
        }
        if p.text.trim().is_empty() || p.text.len() > 2000 {
            return Err(format!(
                "prompt {} must have 1-2000 characters of text",
                p.id
            ));
        }
    }
    Ok(out)
}

impl ProjectConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            detail: e.to_string().trim().to_owned(),
        })?;
        cfg.validate().map_err(|detail| ConfigError::Invalid {
            path: origin.to_owned(),
            detail,
        })?;
        Ok(cfg)
    }

    /// Checks every field; returns the first problem.
    pub fn validate(&self) -> Result<(), String> {
        self.project
            .name
            .parse::<crate::project::ids::ContractorId>()
            .map_err(|_| "project.name must be 3-63 characters from a-z, 0-9 and '-'".to_owned())?;
        if self.recipients.training.is_empty() {
            return Err("recipients.training must list at least one age recipient".into());
        }
        if self.recipients.archive.is_empty() && !self.capture.features_only {
            return Err(
                "recipients.archive is empty: list an archive recipient, or set capture.features_only = true".into(),
            );
        }
        for (kind, list) in [
            ("training", &self.recipients.training),
            ("archive", &self.recipients.archive),
        ] {
            for r in list {
                crate::sealing::keys::parse_recipient(r)
                    .map_err(|e| format!("recipients.{kind}: {e}"))?;
            }
        }
        if !(self.capture.max_take_s > 0.0 && self.capture.max_take_s <= 4.0 * 3600.0) {
            return Err("capture.max_take_s must be between 0 and 14400".into());
        }
        self.quality
            .validate()
            .map_err(|e| format!("quality: {e}"))?;
        self.features.validate()?;
        let mut seen = std::collections::HashSet::new();
        for p in &self.prompts {
            if !seen.insert(p.id.as_str()) {
                return Err(format!("prompts: duplicate id {}", p.id));
            }
            if p.text.trim().is_empty() || p.text.len() > 2000 {
                return Err(format!(
                    "prompts: {} must have 1-2000 characters of text",
                    p.id
                ));
            }
        }
        if let Some(s) = &self.storage {
            if s.bucket.is_empty() || s.region.is_empty() || s.kms_key_arn.is_empty() {
                return Err("storage: bucket, region and kms_key_arn are required".into());
            }
            crate::project::enroll_link::BrokerUrl::parse(&s.broker_url)
                .map_err(|e| format!("storage.broker_url: {e}"))?;
            if self.project.serial == 0 {
                return Err("project.serial is required (1 or more) in a config with [storage]: raise it each time the config is signed again".into());
            }
            if self.project.not_after.is_none() {
                return Err("project.not_after is required in a config with [storage] (RFC 3339 UTC, e.g. 2027-12-31T00:00:00Z)".into());
            }
        }
        if let Some(t) = &self.project.not_after {
            crate::time::parse_rfc3339(t).ok_or_else(|| {
                format!(
                    "project.not_after {t:?} is not an RFC 3339 time (e.g. 2027-12-31T00:00:00Z)"
                )
            })?;
        }
        Ok(())
    }

    /// Refuses a config that has expired (`project.not_after` in the past) at `now`.
    pub fn check_not_expired(&self, now: time::OffsetDateTime) -> Result<(), String> {
        let Some(t) = &self.project.not_after else {
            return Ok(());
        };
        let end =
            crate::time::parse_rfc3339(t).ok_or_else(|| format!("bad project.not_after {t:?}"))?;
        if now > end {
            return Err(format!(
                "project {} config (serial {}) expired at {t}: ask the project lead for a newly signed config",
                self.project.name, self.project.serial
            ));
        }
        Ok(())
    }

    /// Parsed training recipients.
    pub fn training_recipients(&self) -> Vec<age::x25519::Recipient> {
        self.recipients
            .training
            .iter()
            .filter_map(|r| crate::sealing::keys::parse_recipient(r).ok())
            .collect()
    }

    /// Parsed archive recipients.
    pub fn archive_recipients(&self) -> Vec<age::x25519::Recipient> {
        self.recipients
            .archive
            .iter()
            .filter_map(|r| crate::sealing::keys::parse_recipient(r).ok())
            .collect()
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> String {
        age::x25519::Identity::generate().to_public().to_string()
    }

    fn minimal() -> String {
        format!(
            "[project]\nname = \"demo\"\n\n[recipients]\ntraining = [\"{}\"]\narchive = [\"{}\"]\n",
            recipient(),
            recipient()
        )
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = ProjectConfig::parse(&minimal(), "t").unwrap();
        assert_eq!(c.features, FeatureParams::default());
        assert!(c.capture.trim_silence);
        assert!(c.storage.is_none());
        assert_eq!(
            ProjectConfig::parse(&c.to_toml(), "t").unwrap(),
            c,
            "round trip"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            (
                minimal().replace("[recipients]", "[recipients]\nextra = 1"),
                "unknown field",
            ),
            (
                minimal().replace("name = \"demo\"", "name = \"../x\""),
                "project.name",
            ),
            (
                minimal().replace("training = [\"age1", "training = [\"age2"),
                "recipients.training",
            ),
            ("[project]\nname = \"demo\"\n".to_owned(), "missing field"),
            (minimal() + "\n[features]\nn_mels = 0\n", "n_mels"),
            (minimal() + "\n[quality]\nclip_warn_ratio = 2.0\n", "clip"),
            (
                minimal()
                    + "\n[[prompts]]\nid = \"a\"\ntext = \"x\"\n[[prompts]]\nid = \"a\"\ntext = \"y\"\n",
                "duplicate",
            ),
            (
                minimal() + "\n[[prompts]]\nid = \"a/b\"\ntext = \"x\"\n",
                "prompt id",
            ),
            (
                minimal() + "\n[capture]\nfeatures_onyl = true\n",
                "unknown field",
            ),
            ("not toml at all [".to_owned(), "invalid"),
        ];
        for (text, want) in cases {
            let err = ProjectConfig::parse(&text, "project.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "want {want:?} in: {err}");
        }
    }

    #[test]
    fn prompt_sets_from_csv_or_lines() {
        let csv = "id,text,note\np1,\"Hello, world.\",say it slowly\np2,Second one.,\n";
        let p = parse_prompt_set(csv).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].text, "Hello, world.");
        assert_eq!(p[0].note.as_deref(), Some("say it slowly"));
        assert_eq!(p[1].note, None);
        let lines = parse_prompt_set("# my prompts\nFirst.\n\nSecond.\n").unwrap();
        assert_eq!(
            lines.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["p0001", "p0002"]
        );
        for (bad, why) in [
            ("id,text\np1,a\np1,b\n", "duplicate"),
            ("id,text\n../x,a\n", "invalid prompt id"),
            ("id,text\np1,\n", "1-2000"),
            ("", "empty"),
        ] {
            let e = parse_prompt_set(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn features_only_needs_no_archive_key() {
        let text = format!(
            "[project]\nname = \"demo\"\n[recipients]\ntraining = [\"{}\"]\n[capture]\nfeatures_only = true\n",
            recipient()
        );
        assert!(
            ProjectConfig::parse(&text, "t")
                .unwrap()
                .capture
                .features_only
        );
        let without = text.replace("features_only = true", "features_only = false");
        assert!(
            ProjectConfig::parse(&without, "t")
                .unwrap_err()
                .to_string()
                .contains("archive")
        );
    }
}
