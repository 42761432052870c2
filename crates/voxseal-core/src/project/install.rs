//! Installing a lead-signed project config into a data directory, with the rules that stop an
//! old or foreign config from replacing the current one.
//!
//! - The signature must verify against the trusted lead keys (pinned at build time).
//! - An expired config (`project.not_after` in the past) is refused.
//! - The highest serial ever installed per project id is kept in `project-serials.toml`; a config
//!   with a lower serial is refused (a replayed, rolled-back config), and so is one with the same
//!   serial but other content (two different configs may not share a serial).
//! - A config of another project replaces the installed one only with [`Replace::Switch`], an
//!   explicit choice the caller makes and the audit log records.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::project::config::{ConfigError, ProjectConfig};
use crate::store::audit::AuditEvent;
use crate::store::workspace::{Workspace, WorkspaceError};

/// Whether an installation may replace a config of another project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// First install, or a newer config of the installed project.
    SameProject,
    /// The caller chose explicitly to switch this data directory to another project.
    Switch,
}

/// What an installation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Nothing was installed before.
    New,
    /// The same config was already installed (nothing changed).
    Unchanged,
    /// A newer serial of the installed project replaced an older one.
    Updated {
        /// The serial replaced.
        from_serial: u64,
    },
    /// Another project replaced the installed one.
    Switched {
        /// The project replaced.
        from: String,
    },
}

/// Parses config bytes that must be UTF-8 TOML.
pub(crate) fn parse_utf8(bytes: &[u8], origin: &str) -> Result<ProjectConfig, WorkspaceError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        WorkspaceError::Config(ConfigError::Parse {
            path: origin.to_owned(),
            detail: "not UTF-8".into(),
        })
    })?;
    Ok(ProjectConfig::parse(text, origin)?)
}

/// The SHA-256 (hex) of a config's bytes: what manifests record as the config that sealed them.
pub fn config_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Workspace {
    fn serials_path(&self) -> PathBuf {
        self.root().join("project-serials.toml")
    }

    fn serials(&self) -> Result<BTreeMap<String, u64>, WorkspaceError> {
        let path = self.serials_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| WorkspaceError::Settings {
                path: path.display().to_string(),
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(WorkspaceError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The highest serial of `project` ever installed here (0: never).
    pub fn highest_serial(&self, project: &str) -> Result<u64, WorkspaceError> {
        Ok(self.serials()?.get(project).copied().unwrap_or(0))
    }

    /// Checks a signed config (`bytes` with the minisign signature `sig`) without installing it:
    /// signature, validity, expiry and the serial rule. `origin` names it in errors.
    pub fn check_signed(
        &self,
        bytes: &[u8],
        sig: &str,
        origin: &str,
    ) -> Result<ProjectConfig, WorkspaceError> {
        crate::project::signing::verify(self.trusted_keys(), bytes, sig, origin)?;
        let config = parse_utf8(bytes, origin)?;
        config
            .check_not_expired(time::OffsetDateTime::now_utc())
            .map_err(WorkspaceError::Refused)?;
        let name = &config.project.name;
        let highest = self.highest_serial(name)?;
        let serial = config.project.serial;
        if serial < highest {
            return Err(WorkspaceError::Refused(format!(
                "{origin}: project {name} config serial {serial} is older than serial {highest} already installed here; refusing it (an old config may have been replayed): ask the project lead for the current config"
            )));
        }
        if serial == highest && serial > 0 && self.installed_bytes()?.is_some_and(|b| b != bytes) {
            return Err(WorkspaceError::Refused(format!(
                "{origin}: project {name} config serial {serial} differs from the installed config of the same serial; refusing it: the lead must raise the serial when re-signing"
            )));
        }
        Ok(config)
    }

    fn installed_bytes(&self) -> Result<Option<Vec<u8>>, WorkspaceError> {
        let path = self.project_path();
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WorkspaceError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The installed config's bytes' SHA-256 (hex), if a project is installed.
    pub fn installed_config_sha256(&self) -> Result<Option<String>, WorkspaceError> {
        Ok(self.installed_bytes()?.map(|b| config_sha256(&b)))
    }

    /// Verifies and installs a signed config as the active project (see the module docs for the
    /// rules). A refused config leaves everything as it was and is recorded in the audit log.
    pub fn install_signed(
        &self,
        bytes: &[u8],
        sig: &str,
        origin: &str,
        replace: Replace,
    ) -> Result<ProjectConfig, WorkspaceError> {
        match self.try_install(bytes, sig, origin, replace) {
            Ok((config, _)) => Ok(config),
            Err(e) => {
                let _ = self.audit.append(&AuditEvent::ProjectRefused {
                    origin: origin.to_string(),
                    reason: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// As [`install_signed`](Self::install_signed), and says what changed.
    pub fn try_install(
        &self,
        bytes: &[u8],
        sig: &str,
        origin: &str,
        replace: Replace,
    ) -> Result<(ProjectConfig, Installed), WorkspaceError> {
        let config = self.check_signed(bytes, sig, origin)?;
        let previous = match self.installed_bytes()? {
            Some(b) => Some(parse_utf8(&b, "installed project.toml").map_err(|e| {
                WorkspaceError::Refused(format!(
                    "the installed project config cannot be read ({e}); move {} aside to install another",
                    self.project_path().display()
                ))
            })?),
            None => None,
        };
        let outcome = match &previous {
            None => Installed::New,
            Some(p) if p.project.name != config.project.name => {
                if replace != Replace::Switch {
                    return Err(WorkspaceError::Refused(format!(
                        "this data directory belongs to project {}; {origin} is for project {}: switching projects is an explicit choice (the app's Switch project, or `voxseal enroll join --switch-project`)",
                        p.project.name, config.project.name
                    )));
                }
                Installed::Switched {
                    from: p.project.name.clone(),
                }
            }
            Some(_) if self.installed_bytes()?.as_deref() == Some(bytes) => Installed::Unchanged,
            Some(p) => Installed::Updated {
                from_serial: p.project.serial,
            },
        };
        if outcome != Installed::Unchanged {
            self.write_installed(bytes, sig, &config)?;
            self.audit.append(&AuditEvent::ProjectInstalled {
                project: config.project.name.clone(),
                serial: config.project.serial,
                not_after: config.project.not_after.clone(),
                config_sha256: config_sha256(bytes),
                change: match &outcome {
                    Installed::New => "new".to_owned(),
                    Installed::Updated { from_serial } => {
                        format!("updated from serial {from_serial}")
                    }
                    Installed::Switched { from } => format!("switched from project {from}"),
                    Installed::Unchanged => unreachable!(),
                },
            })?;
        }
        Ok((config, outcome))
    }

    fn write_installed(
        &self,
        bytes: &[u8],
        sig: &str,
        config: &ProjectConfig,
    ) -> Result<(), WorkspaceError> {
        let path = self.project_path();
        let io = |p: &std::path::Path| {
            let p = p.display().to_string();
            move |source| WorkspaceError::Io { path: p, source }
        };
        let mut serials = self.serials()?;
        let entry = serials.entry(config.project.name.clone()).or_insert(0);
        *entry = (*entry).max(config.project.serial);
        let serials_path = self.serials_path();
        let text = toml::to_string(&serials).expect("a map of serials serializes");
        crate::store::fsutil::write_atomic(&serials_path, text.as_bytes(), true)
            .map_err(io(&serials_path))?;
        // The signature first: a crash between the two leaves a config that fails verification
        // (refused, nothing trusted), never an unverified one.
        let sig_path = crate::project::signing::sig_path(&path);
        crate::store::fsutil::write_atomic(&sig_path, sig.as_bytes(), true)
            .map_err(io(&sig_path))?;
        crate::store::fsutil::write_atomic(&path, bytes, true).map_err(io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::signing;

    struct Lead {
        _dir: tempfile::TempDir,
        key: PathBuf,
        public: String,
    }

    fn lead() -> Lead {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("lead.key");
        let public = signing::generate_lead_key(&key, &dir.path().join("lead.pub"), None).unwrap();
        Lead {
            _dir: dir,
            key,
            public,
        }
    }

    fn config(name: &str, serial: u64, not_after: &str, broker: &str) -> String {
        let r = || age::x25519::Identity::generate().to_public().to_string();
        format!(
            "[project]\nname = \"{name}\"\nserial = {serial}\nnot_after = \"{not_after}\"\n\
             [recipients]\ntraining = [\"{}\"]\narchive = [\"{}\"]\n\
             [storage]\nbucket = \"b\"\nregion = \"eu-west-1\"\nkms_key_arn = \"arn:aws:kms:eu-west-1:1:key/k\"\nbroker_url = \"{broker}\"\n",
            r(),
            r()
        )
    }

    fn signed(lead: &Lead, text: &str) -> (Vec<u8>, String) {
        let sig = signing::sign(&lead.key, None, text.as_bytes(), "t").unwrap();
        (text.as_bytes().to_vec(), sig)
    }

    fn workspace(lead: &Lead) -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let (mut ws, _) = Workspace::open(dir.path()).unwrap();
        ws.trust(lead.public.clone());
        (dir, ws)
    }

    const LATER: &str = "2999-01-01T00:00:00Z";
    const BROKER: &str = "https://broker.example.com";

    fn install(
        ws: &Workspace,
        c: &(Vec<u8>, String),
        replace: Replace,
    ) -> Result<Installed, String> {
        ws.try_install(&c.0, &c.1, "test", replace)
            .map(|(_, i)| i)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn newer_serials_replace_older_ones_never_the_reverse() {
        let lead = lead();
        let (_d, ws) = workspace(&lead);
        let v1 = signed(&lead, &config("acme", 1, LATER, BROKER));
        let v2 = signed(&lead, &config("acme", 2, LATER, BROKER));
        assert_eq!(install(&ws, &v1, Replace::SameProject), Ok(Installed::New));
        assert_eq!(
            install(&ws, &v1, Replace::SameProject),
            Ok(Installed::Unchanged)
        );
        assert_eq!(
            install(&ws, &v2, Replace::SameProject),
            Ok(Installed::Updated { from_serial: 1 })
        );
        let replay = install(&ws, &v1, Replace::SameProject).unwrap_err();
        assert!(replay.contains("older than serial 2"), "{replay}");
        // The same serial with other content (another recipient) is refused too.
        let other2 = signed(&lead, &config("acme", 2, LATER, BROKER));
        let e = install(&ws, &other2, Replace::SameProject).unwrap_err();
        assert!(e.contains("same serial"), "{e}");
        // Deleting the installed config does not reset the serial.
        std::fs::remove_file(ws.project_path()).unwrap();
        assert!(install(&ws, &v1, Replace::SameProject).is_err());
        assert_eq!(ws.highest_serial("acme").unwrap(), 2);
    }

    #[test]
    fn expired_unsigned_and_foreign_configs_are_refused() {
        let lead = lead();
        let (_d, ws) = workspace(&lead);
        let expired = signed(&lead, &config("acme", 1, "2020-01-01T00:00:00Z", BROKER));
        let e = install(&ws, &expired, Replace::SameProject).unwrap_err();
        assert!(e.contains("expired"), "{e}");
        let stranger = self::lead();
        let forged = signed(&stranger, &config("acme", 5, LATER, BROKER));
        let e = install(&ws, &forged, Replace::SameProject).unwrap_err();
        assert!(e.contains("signature"), "{e}");
        assert!(!ws.project_path().exists(), "nothing installed");
        let audit = std::fs::read_to_string(ws.root().join("audit.log")).unwrap_or_default();
        assert_eq!(
            audit.matches("project.refused").count(),
            0,
            "try_install does not audit"
        );
        assert!(
            ws.install_signed(&forged.0, &forged.1, "t", Replace::SameProject)
                .is_err()
        );
        let audit = std::fs::read_to_string(ws.root().join("audit.log")).unwrap();
        assert_eq!(audit.matches("project.refused").count(), 1);
    }

    #[test]
    fn another_project_only_by_an_explicit_switch() {
        let lead = lead();
        let (_d, ws) = workspace(&lead);
        install(
            &ws,
            &signed(&lead, &config("acme", 3, LATER, BROKER)),
            Replace::SameProject,
        )
        .unwrap();
        let other = signed(&lead, &config("globex", 1, LATER, BROKER));
        let e = install(&ws, &other, Replace::SameProject).unwrap_err();
        assert!(e.contains("belongs to project acme"), "{e}");
        assert_eq!(
            install(&ws, &other, Replace::Switch),
            Ok(Installed::Switched {
                from: "acme".into()
            })
        );
        assert_eq!(ws.project().unwrap().project.name, "globex");
    }

    #[test]
    fn a_config_with_storage_needs_serial_expiry_and_a_safe_broker() {
        let lead = lead();
        let (_d, ws) = workspace(&lead);
        for (text, why) in [
            (config("acme", 0, LATER, BROKER), "project.serial"),
            (
                config("acme", 1, LATER, BROKER).replace(&format!("not_after = \"{LATER}\"\n"), ""),
                "project.not_after",
            ),
            (config("acme", 1, "tomorrow", BROKER), "RFC 3339"),
            (
                config("acme", 1, LATER, "http://localhost.evil.com"),
                "https",
            ),
            (config("acme", 1, LATER, "ftp://b.example.com"), "https"),
        ] {
            let e = install(&ws, &signed(&lead, &text), Replace::SameProject).unwrap_err();
            assert!(e.contains(why), "want {why:?} in {e}");
        }
    }
}
