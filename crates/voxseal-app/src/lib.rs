//! The Voxseal desktop app's logic, without a GUI.
//!
//! [`App`] owns the data directory ([`Workspace`]), the recorder thread (metering always, takes
//! with 200 ms pre-roll and 500 ms post-roll), the take under review, the contractor's progress
//! through the prompts, the enrollment, and a background upload worker. It runs either the
//! project it joined through an enrollment link (production: the config signed by the lead key
//! pinned in this build, fetched from the link's broker), or, as an explicit choice in a data
//! directory of its own, the *demo* on the embedded local stack ([`demo`]). The Tauri shell (`src-tauri`) maps each IPC command of
//! `docs/app-ipc.md` onto one method here and nothing more, so every behaviour is testable
//! without a window.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The IPC commands, written once (the shell's build script, the UI's generated command map and
/// the contract test read this table).
#[macro_use]
pub mod commands;
#[cfg(test)]
mod bindings;
pub mod demo;
mod enrollment;
mod error;
pub mod instance;
mod join;
mod take_session;
pub mod types;
mod upload_worker;
mod views;

use take_session::Session;
use upload_worker::UploadStatus;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use secrecy::SecretString;
use voxseal_cloud::token_store::TokenStore;
use voxseal_core::capture::audio::Level;
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::ids::ContractorId;
use voxseal_core::store::audit::AuditEvent;
use voxseal_core::store::progress::Progress;
use voxseal_core::store::workspace::Workspace;

pub use error::{AppError, AppResult, ErrorKind};
use types::{AppState, ProjectNotice, QueueState};

/// Rare events the shell broadcasts to the web view.
#[derive(Debug, Clone)]
pub enum AppEvent {
    /// The queue changed (an item sealed, uploaded or failed; online state changed).
    QueueChanged(QueueState),
    /// The input device failed.
    DeviceLost(String),
    /// Something outside a command changed the state.
    StateChanged(Box<AppState>),
}

/// A sink for high-rate values (meter levels, upload progress), typically a Tauri channel.
pub type Sink<T> = Box<dyn Fn(T) + Send + Sync>;

/// How the app starts.
pub struct AppOptions {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Overrides the input (`synthetic:speech`, `file:x.wav`): demos without a microphone.
    pub source_override: Option<String>,
    /// Where rare events go.
    pub events: Sink<AppEvent>,
    /// Seconds between upload attempts while offline (first retry; doubles up to 5 minutes).
    pub retry_secs: u64,
    /// A `voxseal://enroll?...` link the app was opened with (shown on the enroll screen for
    /// the contractor to confirm; never enrolled automatically).
    pub enroll_link: Option<String>,
    /// Run the demo (the embedded local stack) in `data_dir`, which must be the demo's own data
    /// directory, never a project's.
    pub demo: bool,
    /// Extra project-lead keys to trust besides the pinned ones (QA and tests). A build with a
    /// pinned lead key refuses to start with any.
    pub trust_keys: Vec<String>,
    /// Where there is no OS keychain (headless QA machines): the passphrase of the encrypted
    /// token file (`VOXSEAL_TOKEN_PASSPHRASE`, as for the CLI). Without it, enrolling on such a
    /// machine is refused before the code is used.
    pub token_passphrase: Option<SecretString>,
}

impl AppOptions {
    /// Options for `data_dir`, with `VOXSEAL_SOURCE` as the source override.
    pub fn new(data_dir: PathBuf, events: Sink<AppEvent>) -> Self {
        Self {
            data_dir,
            source_override: std::env::var("VOXSEAL_SOURCE").ok(),
            events,
            retry_secs: 30,
            enroll_link: None,
            demo: false,
            trust_keys: Vec::new(),
            token_passphrase: std::env::var("VOXSEAL_TOKEN_PASSPHRASE")
                .ok()
                .map(SecretString::from),
        }
    }
}

/// What every clone of [`App`] shares: the workspace, the recorder session, the upload state.
struct AppShared {
    ws: Workspace,
    rt: tokio::runtime::Handle,
    opts_source: Option<String>,
    events: Sink<AppEvent>,
    demo: Option<demo::DemoStack>,
    demo_code: Mutex<Option<String>>,
    project_notice: Mutex<Option<ProjectNotice>>,
    session: Mutex<Session>,
    level_sink: Arc<Mutex<Option<Sink<Level>>>>,
    token: Mutex<Option<SecretString>>,
    upload: Mutex<UploadStatus>,
    upload_now: tokio::sync::Notify,
    upload_lock: tokio::sync::Mutex<()>,
    lost_takes: Mutex<usize>,
    retry_secs: u64,
    enroll_link: Mutex<Option<String>>,
    token_passphrase: Option<SecretString>,
    stopped: std::sync::atomic::AtomicBool,
}

/// The app. Cheap to clone; all methods are safe to call from several threads.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppShared>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn invalid(msg: impl Into<String>) -> AppError {
    AppError::new(ErrorKind::InvalidInput, msg)
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::new(ErrorKind::Internal, e.to_string())
}

/// The passphrase of the local demo's token file: random, next to it, mode 0600. The local
/// stack holds no real credentials; a project deployment uses the OS keychain instead.
fn local_passphrase(dir: &Path) -> AppResult<SecretString> {
    let path = dir.join("local-token-passphrase");
    if let Ok(p) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(p.trim().to_owned()));
    }
    let mut b = [0u8; 24];
    getrandom::getrandom(&mut b).map_err(internal)?;
    let p = hex::encode(b);
    voxseal_core::store::fsutil::write_atomic(&path, p.as_bytes(), true)?;
    Ok(SecretString::from(p))
}

impl App {
    /// Opens the data directory (sweeping what a crash left), starts the demo stack when asked
    /// to (`opts.demo`), and starts the upload worker, on `rt`. Without `demo` the app trusts
    /// only the lead keys pinned in this build and joins a project through an enrollment link.
    pub fn start(opts: AppOptions, rt: tokio::runtime::Handle) -> AppResult<App> {
        let (mut ws, report) = Workspace::open(&opts.data_dir)?;
        if !opts.trust_keys.is_empty() && voxseal_core::project::signing::has_pinned_key() {
            return Err(invalid(
                "this build trusts only the project-lead key built into it",
            ));
        }
        for key in opts.trust_keys {
            ws.trust(key);
        }
        let demo = if opts.demo {
            Some(demo::DemoStack::start(&mut ws, &rt)?)
        } else {
            None
        };
        let inner = Arc::new(AppShared {
            ws,
            rt: rt.clone(),
            opts_source: opts.source_override,
            events: opts.events,
            demo,
            demo_code: Mutex::new(None),
            project_notice: Mutex::new(None),
            session: Mutex::new(Session::default()),
            level_sink: Arc::new(Mutex::new(None)),
            token: Mutex::new(None),
            upload: Mutex::new(UploadStatus {
                online: true,
                ..Default::default()
            }),
            upload_now: tokio::sync::Notify::new(),
            upload_lock: tokio::sync::Mutex::new(()),
            lost_takes: Mutex::new(report.swept_spool.len()),
            retry_secs: opts.retry_secs.max(1),
            enroll_link: Mutex::new(opts.enroll_link.filter(|l| instance::is_enroll_link(l))),
            token_passphrase: opts.token_passphrase,
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        let app = App { inner };
        app.load_token();
        let worker = app.clone();
        rt.spawn(async move { worker.upload_worker().await });
        Ok(app)
    }

    fn is_demo(&self) -> bool {
        self.inner.demo.is_some()
    }

    /// Takes a `voxseal://enroll` link handed over by a second launch: it fills the enroll
    /// screen, also when already enrolled (a new code after a revocation, or another project);
    /// the contractor still confirms. Anything else is ignored.
    pub fn open_link(&self, link: &str) -> AppResult<AppState> {
        if instance::is_enroll_link(link) {
            *lock(&self.inner.enroll_link) = Some(link.to_owned());
        }
        let state = self.state()?;
        (self.inner.events)(AppEvent::StateChanged(Box::new(state.clone())));
        Ok(state)
    }

    /// Stops this app's background work (upload worker, recorder, playback, the demo stack's
    /// servers when the last handle goes), before the shell switches to another data directory.
    pub fn stop(&self) {
        self.inner
            .stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.upload_now.notify_one();
        let mut s = lock(&self.inner.session);
        s.playback = None;
        s.recorder = None;
    }

    fn load_token(&self) {
        let store = TokenStore::new(self.inner.ws.root());
        let pass = if self.is_demo() {
            local_passphrase(self.inner.ws.root()).ok()
        } else {
            self.inner.token_passphrase.clone()
        };
        if let Ok((_, token)) = store.load(|| pass) {
            *lock(&self.inner.token) = Some(token);
        }
    }

    fn config(&self) -> AppResult<ProjectConfig> {
        Ok(self.inner.ws.project()?)
    }

    fn contractor(&self) -> Option<ContractorId> {
        self.inner.ws.settings().ok().and_then(|s| s.contractor)
    }

    fn progress(&self) -> AppResult<Option<Progress>> {
        let (Some(c), Ok(cfg)) = (self.contractor(), self.config()) else {
            return Ok(None);
        };
        Ok(Some(Progress::load(
            self.inner.ws.root(),
            &c,
            &cfg.project.name,
        )?))
    }

    /// Records a completed enrollment and starts uploading.
    pub(crate) fn enrolled(
        &self,
        contractor: ContractorId,
        url: &str,
        token: SecretString,
    ) -> AppResult<()> {
        let mut settings = self.inner.ws.settings()?;
        settings.contractor = Some(contractor.clone());
        self.inner.ws.save_settings(&settings)?;
        (self.inner.ws.audit).append(&AuditEvent::EnrollmentJoined {
            contractor: contractor.clone(),
            broker: url.to_owned(),
            project: None,
            serial: None,
            token_store: None,
        })?;
        *lock(&self.inner.token) = Some(token);
        *lock(&self.inner.demo_code) = None;
        // The link is used up: it no longer fills the enroll screen.
        *lock(&self.inner.enroll_link) = None;
        // The broker just accepted this enrollment: whatever it said before, it is not revoked
        // (without this the notice stayed until the next upload had finished).
        self.set_revoked(false);
        self.inner.upload_now.notify_one();
        Ok(())
    }

    /// The demo stack's details (demo only), for tests and diagnostics.
    #[cfg(feature = "demo")]
    pub fn demo_stack(&self) -> Option<&voxseal_localstack::devstack::DevStackInfo> {
        self.inner.demo.as_ref().map(demo::DemoStack::info)
    }

    /// The workspace (for tests and the shell's diagnostics).
    pub fn workspace(&self) -> &Workspace {
        &self.inner.ws
    }
}
