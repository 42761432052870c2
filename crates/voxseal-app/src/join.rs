//! Joining a real project: the enrollment link names a broker, the broker serves the lead-signed
//! project config, the app verifies it against the lead key pinned in this build, shows it, and
//! only then installs it and redeems the one-time code. Later broker contacts fetch the config
//! again, so a newer serial the lead signs is installed (and shown) without a reinstall.

use secrecy::SecretString;
use voxseal_cloud::provider::{BrokerSource, CredentialError, ProjectProof, SignedProject};
use voxseal_cloud::token_store::TokenStore;
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::enroll_link::{BrokerUrl, EnrollLink};
use voxseal_core::project::install::{Installed, Replace};
use voxseal_core::store::audit::AuditEvent;

use crate::types::{JoinPreview, ProjectNotice, ProjectView};
use crate::{App, AppError, AppResult, ErrorKind, invalid, lock};

/// A project config fetched for a link and checked, not yet installed.
struct Checked {
    link: EnrollLink,
    signed: SignedProject,
    config: ProjectConfig,
    origin: String,
}

pub(crate) fn project_view(c: &ProjectConfig) -> ProjectView {
    ProjectView {
        name: c.project.name.clone(),
        consent_text: c.project.consent_text.clone(),
        features_only: c.capture.features_only,
        prompt_count: c.prompts.len(),
        serial: c.project.serial,
        not_after: c.project.not_after.clone(),
    }
}

fn no_store(e: voxseal_cloud::token_store::TokenStoreError) -> AppError {
    match e {
        voxseal_cloud::token_store::TokenStoreError::NeedPassphrase => AppError::new(
            ErrorKind::NeedsPassphrase,
            "this computer has no usable keychain, so the app cannot keep your enrollment (your code was not used); enroll with `voxseal enroll join --file-store` instead",
        ),
        other => AppError::new(ErrorKind::Storage, other.to_string()),
    }
}

fn refused(e: impl std::fmt::Display) -> AppError {
    AppError::new(ErrorKind::ProjectRefused, e.to_string())
}

impl App {
    /// The installed project's broker, which links must name (unless switching).
    fn installed_broker(&self) -> AppResult<Option<BrokerUrl>> {
        let Ok(config) = self.config() else {
            return Ok(None);
        };
        config
            .storage
            .map(|s| BrokerUrl::parse(&s.broker_url).map_err(refused))
            .transpose()
    }

    /// Fetches the link's project config and checks it: signature against the pinned key,
    /// validity, serial, expiry, and that it names the broker it came from.
    fn fetch_checked(&self, input: &str, switch: bool) -> AppResult<Checked> {
        let input = input.trim();
        if input.is_empty() || input.len() > 2048 {
            return Err(invalid("paste the enrollment link from your project lead"));
        }
        let bound = if switch {
            None
        } else {
            self.installed_broker()?
        };
        let link = EnrollLink::parse(input, bound.as_ref()).map_err(|e| invalid(e.to_string()))?;
        let signed = self.inner.rt.block_on(BrokerSource::fetch_project(
            link.broker.as_str(),
            ProjectProof::Code(&link.code),
        ))?;
        let origin = format!("the project config from {}", link.broker);
        let config =
            self.inner
                .ws
                .check_signed(signed.config.as_bytes(), &signed.signature, &origin)?;
        let named = config
            .storage
            .as_ref()
            .ok_or_else(|| refused("the project config has no [storage] section"))?;
        if !BrokerUrl::parse(&named.broker_url)
            .map_err(refused)?
            .same_origin(&link.broker)
        {
            return Err(refused(format!(
                "the project config names the broker {} but came from {}; ask your project lead for a new link",
                named.broker_url, link.broker
            )));
        }
        Ok(Checked {
            link,
            signed,
            config,
            origin,
        })
    }

    /// The installed project a config of `name` would replace, if another.
    fn replaces(&self, name: &str) -> Option<String> {
        self.config()
            .ok()
            .map(|c| c.project.name)
            .filter(|n| n != name)
    }

    /// Shows what joining with `input` (a `voxseal://enroll` link) would install, without
    /// installing anything or using up the code.
    pub fn preview_join(&self, input: &str, switch: bool) -> AppResult<JoinPreview> {
        if self.is_demo() {
            return Err(invalid("this is the demo: leave it to join your project"));
        }
        let c = self.fetch_checked(input, switch)?;
        Ok(JoinPreview {
            replaces: self.replaces(&c.config.project.name),
            broker: c.link.broker.to_string(),
            project: project_view(&c.config),
        })
    }

    /// Joins the project of `input`: verifies and installs its config, then redeems the code
    /// and keeps the device token in the OS keychain. Another project replaces the installed
    /// one only with `switch`, and only when nothing of it waits for upload.
    pub(crate) fn join_project(&self, input: &str, switch: bool) -> AppResult<()> {
        let c = self.fetch_checked(input, switch)?;
        if let Some(old) = self.replaces(&c.config.project.name) {
            if !switch {
                return Err(AppError::new(
                    ErrorKind::OtherProject,
                    format!(
                        "this link is for project {}, but this computer records for {old}: choose Switch project to change",
                        c.config.project.name
                    ),
                ));
            }
            self.refuse_switch_with_queue(&format!("project {old}"))?;
        }
        // The broker names the code's contractor: another contractor's queue on this computer
        // is not handed over before the code is spent.
        if let (Some(previous), Some(next)) = (self.contractor(), &c.signed.contractor)
            && previous != *next
        {
            self.refuse_switch_with_queue(&previous.to_string())?;
        }
        // Where the token will go is settled before anything is installed or the code is spent.
        let store = TokenStore::new(self.inner.ws.root());
        let pass = self.inner.token_passphrase.as_ref();
        store.usable_backend(false, pass).map_err(no_store)?;
        let replace = if switch {
            Replace::Switch
        } else {
            Replace::SameProject
        };
        self.inner.ws.install_signed(
            c.signed.config.as_bytes(),
            &c.signed.signature,
            &c.origin,
            replace,
        )?;
        let url = c.link.broker.to_string();
        let (contractor, token) = self
            .inner
            .rt
            .block_on(BrokerSource::enroll(&url, &c.link.code))?;
        store
            .save(&contractor, &url, &token, false, pass)
            .map_err(no_store)?;
        self.enrolled(contractor, &url, token)
    }

    fn refuse_switch_with_queue(&self, old: &str) -> AppResult<()> {
        let queued = self.inner.ws.queued()?;
        if queued > 0 {
            return Err(AppError::new(
                ErrorKind::Busy,
                format!(
                    "{queued} recording(s) of {old} still wait for upload: upload them before switching"
                ),
            ));
        }
        Ok(())
    }

    /// On a broker contact: installs a newer signed config if the broker has one. Offline or a
    /// broker without configs changes nothing; a refused config is audited and shown. The one
    /// error is the broker saying this enrollment is revoked.
    pub(crate) async fn refresh_project(
        &self,
        url: &str,
        token: &SecretString,
    ) -> Result<(), CredentialError> {
        let signed = match BrokerSource::fetch_project(url, ProjectProof::Token(token)).await {
            Ok(signed) => signed,
            Err(CredentialError::Revoked) => return Err(CredentialError::Revoked),
            Err(_) => return Ok(()),
        };
        let ws = &self.inner.ws;
        if ws.installed_config_sha256().ok().flatten()
            == Some(voxseal_core::project::install::config_sha256(
                signed.config.as_bytes(),
            ))
        {
            return Ok(());
        }
        let origin = format!("the project config from {url}");
        let outcome = ws.try_install(
            signed.config.as_bytes(),
            &signed.signature,
            &origin,
            Replace::SameProject,
        );
        let notice = match outcome {
            Ok((config, Installed::Updated { from_serial })) => Some(ProjectNotice::Updated {
                from_serial,
                to_serial: config.project.serial,
            }),
            Ok(_) => None,
            Err(e) => {
                let _ = ws.audit.append(&AuditEvent::ProjectRefused {
                    origin: origin.to_string(),
                    reason: e.to_string(),
                });
                Some(ProjectNotice::Refused {
                    message: e.to_string(),
                })
            }
        };
        if notice.is_some() {
            *lock(&self.inner.project_notice) = notice;
            if let Ok(s) = self.state() {
                (self.inner.events)(crate::AppEvent::StateChanged(Box::new(s)));
            }
        }
        Ok(())
    }
}
