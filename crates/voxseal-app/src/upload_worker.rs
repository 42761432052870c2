//! Uploads: draining the outbox through the broker's short-lived credentials, retries, and the
//! background worker.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use voxseal_cloud::provider::{Backoff, BrokerSource, CachingProvider, CredentialSource, Jitter};
use voxseal_cloud::token_store::TokenStore;
use voxseal_cloud::uploader::{UploadConfig, UploadProgress, Uploader};
use voxseal_core::store::outbox::ItemStatus;

use crate::types::QueueState;
use crate::{App, AppError, AppEvent, AppResult, ErrorKind, Sink, internal, invalid, lock};

#[derive(Default, Clone)]
pub(crate) struct UploadStatus {
    pub(crate) online: bool,
    /// The broker's last answer was that this enrollment is revoked.
    pub(crate) revoked: bool,
    pub(crate) uploading: bool,
    pub(crate) progress: Option<UploadProgress>,
}

impl App {
    pub(crate) fn queue_changed(&self) {
        if let Ok(q) = self.queue() {
            (self.inner.events)(AppEvent::QueueChanged(q));
        }
    }

    /// The broker to ask and this device's token.
    pub(crate) fn broker(&self) -> AppResult<(String, SecretString)> {
        let token = lock(&self.inner.token)
            .clone()
            .ok_or_else(|| AppError::new(ErrorKind::NotEnrolled, "enroll first"))?;
        let url = match &self.inner.demo {
            Some(s) => s.broker_url().to_owned(),
            None => TokenStore::new(self.inner.ws.root())
                .enrollment()
                .ok()
                .flatten()
                .map(|e| e.broker_url)
                .ok_or_else(|| AppError::new(ErrorKind::NotEnrolled, "enroll first"))?,
        };
        Ok((url, token))
    }

    pub(crate) fn uploader(&self, url: &str, token: SecretString) -> AppResult<Uploader> {
        let config = self.config()?;
        let storage = config
            .storage
            .ok_or_else(|| internal("the project has no [storage] section"))?;
        let source: Arc<dyn CredentialSource> = Arc::new(BrokerSource::new(url, token));
        let cfg = UploadConfig::new(
            storage.endpoint,
            storage.region,
            storage.bucket,
            storage.kms_key_arn,
        );
        Ok(Uploader::new(
            cfg,
            CachingProvider::new(source),
            self.inner.ws.outbox.clone(),
            self.inner.ws.audit.clone(),
        ))
    }

    /// Uploads now; offline is reported in the result's `online`, not as an error.
    pub async fn upload_now(&self, on_progress: Sink<UploadProgress>) -> AppResult<QueueState> {
        self.drain(Some(on_progress)).await?;
        self.queue()
    }

    pub(crate) async fn drain(&self, on_progress: Option<Sink<UploadProgress>>) -> AppResult<()> {
        let _one_at_a_time = self.inner.upload_lock.lock().await;
        let (url, token) = self.broker()?;
        if !self.is_demo()
            && let Err(e) = self.refresh_project(&url, &token).await
        {
            self.set_revoked(true);
            return Err(e.into());
        }
        let uploader = self.uploader(&url, token)?;
        lock(&self.inner.upload).uploading = true;
        self.queue_changed();
        let me = self.clone();
        let report = uploader
            .drain(&move |p: UploadProgress| {
                lock(&me.inner.upload).progress = Some(p.clone());
                if let Some(f) = &on_progress {
                    f(p)
                }
            })
            .await;
        {
            let mut st = lock(&self.inner.upload);
            st.uploading = false;
            st.progress = None;
            st.online = !matches!(&report, Ok(r) if r.offline.is_some())
                && !matches!(&report, Err(e) if e.is_transient());
        }
        match report {
            Ok(_) => {
                self.set_revoked(false);
                Ok(())
            }
            Err(voxseal_cloud::uploader::UploadError::Credentials(c)) => {
                let e: AppError = c.into();
                if e.kind == ErrorKind::Revoked {
                    self.set_revoked(true);
                } else {
                    self.queue_changed();
                }
                Err(e)
            }
            Err(e) => {
                self.queue_changed();
                Err(AppError::new(ErrorKind::Offline, e.to_string()))
            }
        }
    }

    /// Records whether the broker's last answer was "revoked" and tells the view (the queue,
    /// and the state when it changed).
    pub(crate) fn set_revoked(&self, revoked: bool) {
        let changed = std::mem::replace(&mut lock(&self.inner.upload).revoked, revoked) != revoked;
        self.queue_changed();
        if changed && let Ok(s) = self.state() {
            (self.inner.events)(AppEvent::StateChanged(Box::new(s)));
        }
    }

    /// Marks a failed item for another try and uploads.
    pub async fn retry_item(&self, sample: &str) -> AppResult<QueueState> {
        let id: voxseal_core::project::ids::SampleId = sample
            .parse()
            .map_err(|e: voxseal_core::project::ids::IdError| invalid(e.to_string()))?;
        let mut item = self
            .inner
            .ws
            .outbox
            .get(&id)
            .map_err(|e| invalid(e.to_string()))?;
        if item.state.status == ItemStatus::Failed {
            item.state.status = ItemStatus::Sealed;
            self.inner
                .ws
                .outbox
                .save_state(&mut item)
                .map_err(|e| AppError::new(ErrorKind::Storage, e.to_string()))?;
        }
        let _ = self.drain(None).await;
        self.queue()
    }

    /// Uploads after every accepted take, and retries with backoff while offline.
    pub(crate) async fn upload_worker(self) {
        let backoff = Backoff {
            attempts: u32::MAX,
            base: Duration::from_secs(self.inner.retry_secs),
            cap: Duration::from_secs(300),
            jitter: Jitter::Equal,
        };
        // Failed drains in a row: the pause doubles with each, up to the cap.
        let mut failures = 0u32;
        while !self.inner.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let pending = self
                .inner
                .ws
                .outbox
                .list()
                .map(|(items, _)| {
                    items.iter().any(|i| {
                        matches!(i.state.status, ItemStatus::Sealed | ItemStatus::Uploading)
                    })
                })
                .unwrap_or(false);
            let enrolled = lock(&self.inner.token).is_some();
            if pending && enrolled {
                failures = match self.drain(None).await {
                    Ok(()) => 0,
                    Err(e) if e.kind == ErrorKind::Offline => failures.saturating_add(1),
                    Err(_) => u32::MAX,
                };
            }
            let pause = backoff.delay(failures.saturating_add(1));
            let _ = tokio::time::timeout(pause, self.inner.upload_now.notified()).await;
        }
    }
}
