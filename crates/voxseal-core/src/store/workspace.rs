//! The app's data directory and the operations that span its parts.
//!
//! ```text
//! <data dir>/settings.toml   contractor id, chosen device, consent
//!            project.toml    the active project config
//!            spool/          encrypted takes under review (keys in memory only)
//!            outbox/         sealed samples awaiting upload
//!            audit.log       hash-chained event log
//! ```
//! [`Workspace::open`] creates what is missing (owner-only permissions), sweeps orphaned spool
//! files and half-built outbox items left by a crash, logs sealed items a crash left unlogged,
//! and records what it did.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::project::config::{ConfigError, ProjectConfig};
use crate::project::ids::ContractorId;
use crate::project::manifest::Consent;
use crate::store::audit::{AuditEvent, AuditLog};
use crate::store::outbox::{ItemStatus, Outbox};

/// Per-install settings (`settings.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// This install's contractor.
    pub contractor: Option<ContractorId>,
    /// The chosen input device's name (absent: the system default).
    pub device: Option<String>,
    /// The consent given, if any.
    pub consent: Option<Consent>,
    /// `light`, `dark` or `system`.
    pub theme: Option<String>,
    /// UI language tag.
    pub language: Option<String>,
    /// A microphone check was done on this machine.
    pub mic_checked: bool,
}

/// Why the workspace could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// File system error.
    #[error("data directory {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `settings.toml` is invalid.
    #[error("settings {path} are invalid: {detail}")]
    Settings {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A project config was refused: another project, an older serial, an expired config.
    #[error("{0}")]
    Refused(String),
    /// No project is configured.
    #[error(
        "no project is set up in {0}; run `voxseal init --contractor <id> --project <project.toml>`"
    )]
    NoProject(String),
    /// No contractor is configured.
    #[error(
        "no contractor id is set in {0}; run `voxseal init --contractor <id> --project <project.toml>`"
    )]
    NoContractor(String),
    /// The project config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The spool could not be swept.
    #[error(transparent)]
    Spool(#[from] crate::capture::spool::SpoolError),
    /// The outbox could not be read.
    #[error(transparent)]
    Outbox(#[from] crate::store::outbox::OutboxError),
    /// The audit log could not be written.
    #[error(transparent)]
    Audit(#[from] crate::store::audit::AuditError),
    /// The project config's signature does not verify.
    #[error(transparent)]
    Signature(#[from] crate::project::signing::SignatureError),
}

/// What [`Workspace::open`] cleaned up.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Spool files of takes lost to a crash (never sealed).
    pub swept_spool: Vec<crate::capture::spool::Swept>,
    /// Half-built outbox items removed.
    pub swept_staging: Vec<String>,
    /// Sealed items whose `take.sealed` event the crash kept from being logged, logged now.
    pub logged_after_crash: Vec<crate::project::ids::SampleId>,
}

/// How many raw recordings are on this machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawOnMachine {
    /// Takes in the spool (encrypted, under review).
    pub spool_takes: usize,
    /// Sealed raw audio in the outbox, not yet uploaded.
    pub sealed_raw: usize,
}

impl RawOnMachine {
    /// The total.
    pub fn total(&self) -> usize {
        self.spool_takes + self.sealed_raw
    }
}

/// The data directory.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    trusted: Vec<String>,
    /// The audit log.
    pub audit: AuditLog,
    /// The outbox.
    pub outbox: Outbox,
}

impl Workspace {
    /// Opens (creating if needed) the data directory and sweeps leftovers of a crash.
    pub fn open(root: &Path) -> Result<(Self, OpenReport), WorkspaceError> {
        let io = |source| WorkspaceError::Io {
            path: root.display().to_string(),
            source,
        };
        crate::store::fsutil::create_private_dir(root).map_err(io)?;
        let ws = Self {
            root: root.to_owned(),
            trusted: crate::project::signing::pinned_lead_keys(),
            audit: AuditLog::new(root.join("audit.log")),
            outbox: Outbox::new(root.join("outbox")),
        };
        let mut report = OpenReport::default();
        // While another process seals, its items are its own to finish: recovery waits.
        if let Some(still) = ws.outbox.hold_still()? {
            report.swept_staging = ws.outbox.sweep_staging(&still)?;
            if !report.swept_staging.is_empty() {
                ws.audit.append(&AuditEvent::OutboxSwept {
                    staging: report.swept_staging.clone(),
                })?;
            }
            report.logged_after_crash = ws.log_unlogged_items(&still)?;
        }
        let sealed = ws.sealed_takes_if_spool_left()?;
        report.swept_spool = crate::capture::spool::sweep(&ws.spool_dir(), &ws.audit, &sealed)?;
        Ok((ws, report))
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where spool files go.
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    fn settings_path(&self) -> PathBuf {
        self.root.join("settings.toml")
    }

    /// Path of the active project config.
    pub fn project_path(&self) -> PathBuf {
        self.root.join("project.toml")
    }

    /// Reads the settings (defaults when absent).
    pub fn settings(&self) -> Result<Settings, WorkspaceError> {
        let path = self.settings_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| WorkspaceError::Settings {
                path: path.display().to_string(),
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(WorkspaceError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes the settings atomically.
    pub fn save_settings(&self, s: &Settings) -> Result<(), WorkspaceError> {
        let path = self.settings_path();
        let text = toml::to_string_pretty(s).expect("settings always serialize");
        crate::store::fsutil::write_atomic(&path, text.as_bytes(), true).map_err(|source| {
            WorkspaceError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// Also trusts `key` (a base64 minisign public key) for project configs. Callers add keys
    /// deliberately: the demo stack's own key, or a key the CLI was explicitly given. A build with
    /// a pinned lead key ignores this: it trusts the pinned key only.
    pub fn trust(&mut self, key: String) {
        if crate::project::signing::has_pinned_key() {
            return;
        }
        if !self.trusted.contains(&key) {
            self.trusted.push(key);
        }
    }

    /// Verifies `config_path` against `<config_path>.sig` and installs it with
    /// [`install_signed`](Self::install_signed) (as a first install or an update, never a switch).
    pub fn install_project(&self, config_path: &Path) -> Result<ProjectConfig, WorkspaceError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| WorkspaceError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        let bytes = read(config_path)?;
        let sig_path = crate::project::signing::sig_path(config_path);
        let origin = config_path.display().to_string();
        let sig = match std::fs::read(&sig_path) {
            Ok(sig) => sig,
            Err(e) => {
                let e = crate::project::signing::SignatureError::Missing {
                    path: sig_path.display().to_string(),
                    detail: e.to_string(),
                };
                let _ = self.audit.append(&AuditEvent::ProjectRefused {
                    origin: origin.to_string(),
                    reason: e.to_string(),
                });
                return Err(e.into());
            }
        };
        self.install_signed(
            &bytes,
            &String::from_utf8_lossy(&sig),
            &origin,
            crate::project::install::Replace::SameProject,
        )
    }

    fn verified(&self, path: &Path) -> Result<(ProjectConfig, Vec<u8>), WorkspaceError> {
        let bytes = crate::project::signing::verify_file(&self.trusted, path)?;
        let config = crate::project::install::parse_utf8(&bytes, &path.display().to_string())?;
        Ok((config, bytes))
    }

    /// The trusted lead keys (pinned, plus those added with [`trust`](Self::trust)).
    pub fn trusted_keys(&self) -> &[String] {
        &self.trusted
    }

    /// The active project config, verified against its signature on every load (a file changed
    /// on disk after installation is refused, with an audit event).
    pub fn project(&self) -> Result<ProjectConfig, WorkspaceError> {
        let path = self.project_path();
        if !path.exists() {
            return Err(WorkspaceError::NoProject(self.root.display().to_string()));
        }
        match self.verified(&path) {
            Ok((config, _)) => Ok(config),
            Err(e) => {
                let _ = self.audit.append(&AuditEvent::ProjectRefused {
                    origin: "project.toml".into(),
                    reason: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// SHA-256 (hex) of the installed, signature-verified `project.toml` bytes, provided they
    /// are the config `expected` (the one a take was reviewed under); recorded in manifests.
    pub fn project_sha256(&self, expected: &ProjectConfig) -> Result<String, WorkspaceError> {
        let path = self.project_path();
        if !path.exists() {
            return Err(WorkspaceError::NoProject(self.root.display().to_string()));
        }
        let (config, bytes) = self.verified(&path)?;
        if config != *expected {
            return Err(WorkspaceError::Config(ConfigError::Invalid {
                path: path.display().to_string(),
                detail: "it is not the config the take was recorded under".into(),
            }));
        }
        Ok(crate::project::install::config_sha256(&bytes))
    }

    /// The consent on record for `config`'s consent text (`None`: none given, or given to a
    /// different text).
    pub fn consent_for(&self, config: &ProjectConfig) -> Result<Option<Consent>, WorkspaceError> {
        let want = Consent::sha256_of(&config.project.consent_text);
        Ok(self.settings()?.consent.filter(|c| c.text_sha256 == want))
    }

    /// Records the contractor's consent to `config`'s consent text: kept in the settings (and
    /// copied into every manifest sealed from then on) and logged as `consent.given`.
    pub fn give_consent(&self, config: &ProjectConfig) -> Result<Consent, WorkspaceError> {
        let consent = Consent::given_now(&config.project.consent_text);
        let mut settings = self.settings()?;
        settings.consent = Some(consent.clone());
        self.save_settings(&settings)?;
        self.audit.append(&AuditEvent::ConsentGiven {
            contractor: settings.contractor.clone(),
            text_sha256: consent.text_sha256.clone(),
        })?;
        Ok(consent)
    }

    /// The configured contractor.
    pub fn contractor(&self) -> Result<ContractorId, WorkspaceError> {
        self.settings()?
            .contractor
            .ok_or_else(|| WorkspaceError::NoContractor(self.root.display().to_string()))
    }

    /// Sealed items not uploaded yet (a data directory with any belongs to their contractor
    /// and project until they are uploaded).
    pub fn queued(&self) -> Result<usize, WorkspaceError> {
        let (items, _) = self.outbox.list()?;
        Ok(items
            .iter()
            .filter(|i| i.state.status != ItemStatus::Uploaded)
            .count())
    }

    /// Counts raw recordings still on this machine (spool takes and unuploaded raw ciphertext).
    pub fn raw_on_machine(&self) -> Result<RawOnMachine, WorkspaceError> {
        let spool_takes = match std::fs::read_dir(self.spool_dir()) {
            Ok(d) => d
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "spool"))
                .count(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(WorkspaceError::Io {
                    path: self.spool_dir().display().to_string(),
                    source,
                });
            }
        };
        let (items, _) = self.outbox.list()?;
        let sealed_raw = items
            .iter()
            .filter(|i| i.state.status != ItemStatus::Uploaded)
            .filter(|i| {
                i.payload_path(crate::project::manifest::PayloadKind::Raw)
                    .exists()
            })
            .count();
        Ok(RawOnMachine {
            spool_takes,
            sealed_raw,
        })
    }
}
