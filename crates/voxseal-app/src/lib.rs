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

pub mod demo;
mod error;
pub mod instance;
mod join;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::SecretString;
use voxseal_cloud::provider::{Backoff, BrokerSource, CachingProvider, CredentialSource, Jitter};
use voxseal_cloud::token_store::TokenStore;
use voxseal_cloud::uploader::{UploadConfig, UploadProgress, Uploader};
use voxseal_core::capture::audio::playback::Playback;
use voxseal_core::capture::audio::{DeviceInfo, Level};
use voxseal_core::capture::recorder::{RecordedTake, Recorder, RecorderEvent, RecorderOptions};
use voxseal_core::dsp::pcm::PcmReplay;
use voxseal_core::dsp::quality::{MicCheck, QualityReport};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::enroll_link::EnrollLink;
use voxseal_core::project::ids::{ContractorId, PromptId};
use voxseal_core::project::manifest::Consent;
use voxseal_core::sealing::seal::Review;
use voxseal_core::store::outbox::ItemStatus;
use voxseal_core::store::progress::Progress;
use voxseal_core::store::workspace::Workspace;

pub use error::{AppError, AppResult, ErrorKind};
use types::{
    ActivityEntry, AppState, Mode, ProjectNotice, PromptProgressView, PromptView, QueueItem,
    QueueState, TakeReview,
};

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

const PRE_ROLL: Duration = Duration::from_millis(200);
const POST_ROLL: Duration = Duration::from_millis(500);
const MIC_CHECK: Duration = Duration::from_secs(3);

struct UnderReview {
    take: RecordedTake,
    prompt: PromptId,
    quality: QualityReport,
    view: TakeReview,
}

/// What the recorder is recording now.
#[derive(Debug, Clone, PartialEq)]
enum Recording {
    /// The microphone check (never sealed).
    MicCheck,
    /// A take of a prompt.
    Take(PromptId),
}

#[derive(Default)]
struct Session {
    recorder: Option<Recorder>,
    recording: Option<Recording>,
    review: Option<UnderReview>,
    playback: Option<Playback>,
}

#[derive(Default, Clone)]
struct UploadStatus {
    online: bool,
    /// The broker's last answer was that this enrollment is revoked.
    revoked: bool,
    uploading: bool,
    progress: Option<UploadProgress>,
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

    /// Everything the UI renders.
    pub fn state(&self) -> AppResult<AppState> {
        let settings = self.inner.ws.settings()?;
        let config = self.config().ok();
        let enrolled = lock(&self.inner.token).is_some();
        let progress = self.progress()?;
        let prompts: Vec<PromptView> = config
            .iter()
            .flat_map(|c| &c.prompts)
            .map(|p| PromptView {
                id: p.id.to_string(),
                text: p.text.clone(),
                note: p.note.clone(),
            })
            .collect();
        let progress_view = config
            .iter()
            .flat_map(|c| &c.prompts)
            .map(|p| {
                let g = progress
                    .as_ref()
                    .map(|pr| pr.get(&p.id))
                    .unwrap_or_default();
                PromptProgressView {
                    prompt_id: p.id.to_string(),
                    status: g.status,
                    sample_id: g.sample_id.map(|s| s.to_string()),
                    versions: g.versions,
                    flag_reason: g.flag_reason,
                }
            })
            .collect();
        let consent_given = match (&settings.consent, &config) {
            (Some(c), Some(cfg)) => c.text_sha256 == Consent::sha256_of(&cfg.project.consent_text),
            _ => false,
        };
        let mut demo_code = None;
        if let Some(stack) = &self.inner.demo
            && !enrolled
        {
            let mut code = lock(&self.inner.demo_code);
            if code.is_none() {
                *code = stack.enrollment_code();
            }
            demo_code = code.clone();
        }
        Ok(AppState {
            mode: if self.is_demo() {
                Mode::Demo
            } else {
                Mode::Project
            },
            demo_available: demo::AVAILABLE,
            project_notice: lock(&self.inner.project_notice).clone(),
            enrolled,
            contractor: settings.contractor.as_ref().map(|c| c.to_string()),
            project: config.as_ref().map(join::project_view),
            consent_given,
            device: settings.device.clone(),
            current_prompt: progress
                .as_ref()
                .map_or(0, |p| p.current())
                .min(prompts.len().saturating_sub(1)),
            prompts,
            progress: progress_view,
            lost_takes: *lock(&self.inner.lost_takes),
            theme: settings.theme.clone().unwrap_or_else(|| "system".into()),
            language: settings.language.clone().unwrap_or_else(|| "en".into()),
            mic_checked: settings.mic_checked,
            review: lock(&self.inner.session)
                .review
                .as_ref()
                .map(|r| r.view.clone()),
            demo_code,
            enroll_link: lock(&self.inner.enroll_link).clone(),
        })
    }

    /// Enrolls this device with a `voxseal://enroll` link (or, in the demo, the demo code).
    /// In a project, `switch` allows replacing the installed project with the link's.
    pub fn enroll(&self, input: &str, switch: bool) -> AppResult<AppState> {
        match &self.inner.demo {
            Some(stack) => self.join_demo(stack.broker_url().to_owned(), input)?,
            None => self.join_project(input, switch)?,
        }
        self.state()
    }

    /// Enrolls with the running demo stack's broker (a link from an earlier demo run names an
    /// old port: only its code is used).
    fn join_demo(&self, url: String, input: &str) -> AppResult<()> {
        let broker =
            voxseal_core::project::enroll_link::BrokerUrl::parse(&url).map_err(internal)?;
        let code = match EnrollLink::parse(input, None) {
            Ok(link) => link.code,
            Err(_) => {
                EnrollLink::parse(input, Some(&broker))
                    .map_err(|e| invalid(e.to_string()))?
                    .code
            }
        };
        let (contractor, token) = self.inner.rt.block_on(BrokerSource::enroll(&url, &code))?;
        let pass = local_passphrase(self.inner.ws.root())?;
        TokenStore::new(self.inner.ws.root())
            .save(&contractor, &url, &token, true, Some(&pass))
            .map_err(|e| AppError::new(ErrorKind::Storage, e.to_string()))?;
        self.enrolled(contractor, &url, token)
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
        self.inner.ws.audit.append(
            "enrollment.joined",
            serde_json::json!({ "contractor": contractor, "broker": url }),
        )?;
        *lock(&self.inner.token) = Some(token);
        *lock(&self.inner.demo_code) = None;
        // The link is used up: it no longer fills the enroll screen.
        *lock(&self.inner.enroll_link) = None;
        self.inner.upload_now.notify_one();
        Ok(())
    }

    /// Records the contractor's consent to the project's consent text.
    pub fn give_consent(&self) -> AppResult<AppState> {
        let config = self.config()?;
        self.inner.ws.give_consent(&config)?;
        self.state()
    }

    /// Input devices.
    pub fn list_devices(&self) -> AppResult<Vec<DeviceInfo>> {
        voxseal_core::capture::audio::list_input_devices()
            .map_err(|e| AppError::new(ErrorKind::NoDevice, e.to_string()))
    }

    /// Chooses the input device (None: the system default); remembered.
    pub fn select_device(&self, name: Option<String>) -> AppResult<AppState> {
        if let Some(n) = &name
            && (n.is_empty() || n.len() > 512)
        {
            return Err(invalid("device name out of range"));
        }
        {
            let mut s = lock(&self.inner.session);
            if s.recording.is_some() {
                return Err(AppError::new(
                    ErrorKind::Busy,
                    "stop recording before changing the microphone",
                ));
            }
            s.recorder = None; // reopened with the new device on next use
        }
        let mut settings = self.inner.ws.settings()?;
        settings.device = name;
        self.inner.ws.save_settings(&settings)?;
        self.state()
    }

    fn source_spec(&self) -> String {
        if let Some(s) = &self.inner.opts_source {
            return s.clone();
        }
        match self.inner.ws.settings().ok().and_then(|s| s.device) {
            Some(d) => format!("mic:{d}"),
            None => "mic".into(),
        }
    }

    /// Opens the recorder if it is not open (on the chosen device).
    fn ensure_recorder(&self, s: &mut Session) -> AppResult<()> {
        if s.recorder.is_some() {
            return Ok(());
        }
        let factory = voxseal_core::capture::audio::parse_source(&self.source_spec(), true, 48_000)
            .map_err(|e| AppError::new(ErrorKind::NoDevice, e.to_string()))?;
        let config = self.config()?;
        let mut opts = RecorderOptions::new(self.inner.ws.spool_dir());
        opts.pre_roll = PRE_ROLL;
        opts.post_roll = POST_ROLL;
        opts.max_duration = Some(Duration::from_secs_f64(config.capture.max_take_s));
        let sink = self.inner.level_sink.clone();
        let me = Arc::downgrade(&self.inner);
        let rec = Recorder::start(
            factory,
            opts,
            move |l| {
                if let Some(f) = lock(&sink).as_ref() {
                    f(l)
                }
            },
            move |e| {
                if let (RecorderEvent::SourceFailed(why), Some(inner)) = (e, me.upgrade()) {
                    (inner.events)(AppEvent::DeviceLost(why));
                }
            },
        )?;
        s.recorder = Some(rec);
        Ok(())
    }

    /// Starts the live meter (~25 Hz) for the mic check; nothing is recorded.
    pub fn start_meter(&self, on_level: Sink<Level>) -> AppResult<()> {
        let mut s = lock(&self.inner.session);
        self.ensure_recorder(&mut s)?;
        *lock(&self.inner.level_sink) = Some(on_level);
        Ok(())
    }

    /// Stops sending meter levels.
    pub fn stop_meter(&self) {
        *lock(&self.inner.level_sink) = None;
    }

    /// Records 3 s, judges background and voice level, keeps nothing.
    pub fn check_noise(&self) -> AppResult<MicCheck> {
        let config = self.config()?;
        {
            let mut s = lock(&self.inner.session);
            if s.recording.is_some() || s.review.is_some() {
                return Err(AppError::new(
                    ErrorKind::Busy,
                    "finish the take under review first",
                ));
            }
            self.ensure_recorder(&mut s)?;
            s.recorder.as_ref().expect("opened").begin_take()?;
            s.recording = Some(Recording::MicCheck);
        }
        std::thread::sleep(MIC_CHECK);
        let take = {
            let mut s = lock(&self.inner.session);
            s.recording = None;
            s.recorder.as_ref().expect("opened").end_take()
        };
        let take = take?;
        let report = take.analyzer.clone().finish(&config.quality);
        let check = voxseal_core::dsp::quality::mic_check(&report, &config.quality);
        take.spool
            .wipe()
            .map_err(|e| AppError::new(ErrorKind::Storage, e.to_string()))?;
        let mut settings = self.inner.ws.settings()?;
        settings.mic_checked = true;
        self.inner.ws.save_settings(&settings)?;
        self.inner.ws.audit.append(
            "mic.checked",
            serde_json::json!({ "verdict": check.verdict, "noise_floor_dbfs": check.noise_floor_dbfs }),
        )?;
        Ok(check)
    }

    /// Starts a take of `prompt` (with 200 ms of pre-roll).
    pub fn start_take(&self, prompt: &str, on_level: Sink<Level>) -> AppResult<String> {
        let prompt: PromptId = prompt
            .parse()
            .map_err(|e: voxseal_core::project::ids::IdError| invalid(e.to_string()))?;
        let config = self.config()?;
        if !config.prompts.iter().any(|p| p.id == prompt) {
            return Err(invalid(format!("prompt {prompt} is not in the project")));
        }
        if lock(&self.inner.token).is_none() {
            return Err(AppError::new(
                ErrorKind::NotEnrolled,
                "enroll this computer first",
            ));
        }
        if !self.state()?.consent_given {
            return Err(AppError::new(
                ErrorKind::NoConsent,
                "read and accept the consent first",
            ));
        }
        let mut s = lock(&self.inner.session);
        if s.recording.is_some() || s.review.is_some() {
            return Err(AppError::new(
                ErrorKind::Busy,
                "accept, re-record or discard the current take first",
            ));
        }
        self.ensure_recorder(&mut s)?;
        *lock(&self.inner.level_sink) = Some(on_level);
        let id = match s.recorder.as_ref().expect("opened").begin_take() {
            Ok(id) => id,
            Err(e) => {
                // A dead device: forget the recorder so the next attempt reopens it.
                s.recorder = None;
                return Err(e.into());
            }
        };
        s.recording = Some(Recording::Take(prompt));
        Ok(id.to_string())
    }

    /// Stops the take (after 500 ms of post-roll) and puts it under review.
    pub fn stop_take(&self) -> AppResult<TakeReview> {
        let config = self.config()?;
        let (take, prompt) = {
            let mut s = lock(&self.inner.session);
            let Some(Recording::Take(prompt)) = s.recording.clone() else {
                return Err(AppError::new(
                    ErrorKind::NoTake,
                    "no take is being recorded",
                ));
            };
            s.recording = None;
            let take = s
                .recorder
                .as_ref()
                .ok_or_else(|| AppError::new(ErrorKind::NoTake, "no recorder"))?
                .end_take();
            // A lost device ends the recorder; a take cut at max_take_s does not.
            if take
                .as_ref()
                .is_ok_and(|t| t.interrupted.is_some() && !t.reached_limit())
            {
                s.recorder = None;
            }
            (take?, prompt)
        };
        self.inner.ws.audit.append(
            "take.recorded",
            serde_json::json!({
                "take": take.take_id, "prompt": prompt, "duration_s": take.duration_s(),
                "dropped": take.counters.dropped, "interrupted": take.interrupted.is_some(),
            }),
        )?;
        let quality = take.analyzer.clone().finish(&config.quality);
        let waveform = voxseal_core::dsp::pcm::waveform(&take.spool, 400)?;
        let view = TakeReview {
            take_id: take.take_id.to_string(),
            prompt_id: prompt.to_string(),
            duration_s: take.duration_s(),
            waveform,
            quality: quality.clone(),
            interrupted: take.interrupted.clone(),
        };
        lock(&self.inner.session).review = Some(UnderReview {
            take,
            prompt,
            quality,
            view: view.clone(),
        });
        Ok(view)
    }

    /// Plays the take under review; returns when it ends or is stopped.
    pub fn play_take(&self) -> AppResult<()> {
        {
            let mut s = lock(&self.inner.session);
            let r = s
                .review
                .as_ref()
                .ok_or_else(|| AppError::new(ErrorKind::NoTake, "no take to play"))?;
            let pb = voxseal_core::capture::audio::playback::play(&r.take.spool as &dyn PcmReplay)
                .map_err(|e| AppError::new(ErrorKind::NoDevice, e.to_string()))?;
            s.playback = Some(pb);
        }
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let mut s = lock(&self.inner.session);
            match &s.playback {
                Some(p) if !p.is_done() => {}
                _ => {
                    s.playback = None;
                    return Ok(());
                }
            }
        }
    }

    /// Stops playback.
    pub fn stop_playback(&self) {
        if let Some(p) = lock(&self.inner.session).playback.take() {
            p.stop();
        }
    }

    /// Seals the take under review into the outbox (wiping its spool) and moves on.
    pub fn accept_take(&self, accept_failed: bool) -> AppResult<AppState> {
        let config = self.config()?;
        let contractor = self
            .contractor()
            .ok_or_else(|| AppError::new(ErrorKind::NotEnrolled, "enroll first"))?;
        let review = lock(&self.inner.session)
            .review
            .take()
            .ok_or_else(|| AppError::new(ErrorKind::NoTake, "no take to accept"))?;
        if review.quality.overall == voxseal_core::dsp::quality::Verdict::Fail && !accept_failed {
            let reasons: Vec<String> = review
                .quality
                .checks
                .iter()
                .filter(|c| c.verdict == voxseal_core::dsp::quality::Verdict::Fail)
                .map(|c| c.reason.clone())
                .collect();
            lock(&self.inner.session).review = Some(review);
            return Err(AppError::new(
                ErrorKind::QualityFailed,
                format!(
                    "the take failed: {}; re-record it or accept it anyway",
                    reasons.join("; ")
                ),
            ));
        }
        let mut progress = self
            .progress()?
            .ok_or_else(|| AppError::new(ErrorKind::NotEnrolled, "enroll first"))?;
        let settings = self.inner.ws.settings()?;
        let sealing = Review {
            prompt_id: Some(review.prompt.clone()),
            supersedes: progress.current_sample(&review.prompt),
            accept_failed,
            consent: settings.consent.clone(),
        };
        let UnderReview {
            take,
            prompt,
            quality,
            view,
        } = review;
        match self
            .inner
            .ws
            .accept_take(&config, &contractor, take, &quality, &sealing, &mut |_| {})
        {
            Ok(item) => {
                progress.accepted(&prompt, &item.manifest.sample_id)?;
                self.advance(&mut progress, &config, &prompt)?;
                self.queue_changed();
                self.inner.upload_now.notify_one();
                self.state()
            }
            Err(e) => {
                let err = e.error.to_string();
                lock(&self.inner.session).review = Some(UnderReview {
                    take: e.take,
                    prompt,
                    quality,
                    view,
                });
                Err(AppError::new(ErrorKind::Storage, err))
            }
        }
    }

    fn advance(
        &self,
        progress: &mut Progress,
        config: &ProjectConfig,
        from: &PromptId,
    ) -> AppResult<()> {
        let idx = config
            .prompts
            .iter()
            .position(|p| &p.id == from)
            .unwrap_or(0);
        progress.set_current((idx + 1).min(config.prompts.len().saturating_sub(1)))?;
        Ok(())
    }

    /// Discards the take under review (spool wiped, key zeroized).
    pub fn discard_take(&self) -> AppResult<AppState> {
        let review = lock(&self.inner.session)
            .review
            .take()
            .ok_or_else(|| AppError::new(ErrorKind::NoTake, "no take to discard"))?;
        self.inner
            .ws
            .discard_take(review.take, "discarded by the contractor")?;
        self.state()
    }

    /// Skips a prompt (flagging it when `flag_reason` is given) and moves on.
    pub fn skip_prompt(&self, prompt: &str, flag_reason: Option<String>) -> AppResult<AppState> {
        let prompt: PromptId = prompt
            .parse()
            .map_err(|e: voxseal_core::project::ids::IdError| invalid(e.to_string()))?;
        if flag_reason.as_ref().is_some_and(|r| r.len() > 1000) {
            return Err(invalid("the reason is too long (1000 characters at most)"));
        }
        self.not_busy()?;
        let config = self.config()?;
        if !config.prompts.iter().any(|p| p.id == prompt) {
            return Err(invalid(format!("prompt {prompt} is not in the project")));
        }
        let mut progress = self
            .progress()?
            .ok_or_else(|| AppError::new(ErrorKind::NotEnrolled, "enroll first"))?;
        progress.skipped(&prompt, flag_reason.clone())?;
        self.inner.ws.audit.append(
            if flag_reason.is_some() {
                "prompt.flagged"
            } else {
                "prompt.skipped"
            },
            serde_json::json!({ "prompt": prompt, "reason": flag_reason }),
        )?;
        self.advance(&mut progress, &config, &prompt)?;
        self.state()
    }

    fn not_busy(&self) -> AppResult<()> {
        let s = lock(&self.inner.session);
        if s.recording.is_some() || s.review.is_some() {
            return Err(AppError::new(
                ErrorKind::Busy,
                "accept, re-record or discard the current take first",
            ));
        }
        Ok(())
    }

    /// Moves to a prompt.
    pub fn go_to_prompt(&self, index: usize) -> AppResult<AppState> {
        self.not_busy()?;
        let config = self.config()?;
        if index >= config.prompts.len() {
            return Err(invalid(format!(
                "there are {} prompts",
                config.prompts.len()
            )));
        }
        let mut progress = self
            .progress()?
            .ok_or_else(|| AppError::new(ErrorKind::NotEnrolled, "enroll first"))?;
        progress.set_current(index)?;
        self.state()
    }

    /// The queue screen.
    pub fn queue(&self) -> AppResult<QueueState> {
        let (items, _) = self
            .inner
            .ws
            .outbox
            .list()
            .map_err(|e| AppError::new(ErrorKind::Storage, e.to_string()))?;
        let status = lock(&self.inner.upload).clone();
        let items = items
            .iter()
            .map(|i| {
                let total: u64 = i.manifest.payloads.iter().map(|p| p.size).sum();
                let done = match (&status.progress, i.state.status) {
                    (_, ItemStatus::Uploaded) => total,
                    (Some(p), _)
                        if p.sample_id.as_deref() == Some(i.manifest.sample_id.as_str()) =>
                    {
                        p.item_bytes_done
                    }
                    _ => total.saturating_sub(i.local_bytes()),
                };
                QueueItem {
                    sample_id: i.manifest.sample_id.to_string(),
                    prompt_id: i.manifest.prompt_id.as_ref().map(|p| p.to_string()),
                    status: i.state.status,
                    bytes_total: total,
                    bytes_done: done.min(total),
                    last_error: i.state.last_error.clone(),
                    sealed_at: i.manifest.sealed_at.clone(),
                }
            })
            .collect();
        let last_wipe_at = self.inner.ws.audit.entries().ok().and_then(|e| {
            e.into_iter()
                .rev()
                .find(|e| e.event == "spool.wiped" || e.event == "take.discarded")
                .map(|e| e.time)
        });
        Ok(QueueState {
            items,
            online: status.online,
            revoked: status.revoked,
            uploading: status.uploading,
            raw_on_machine: self.inner.ws.raw_on_machine()?.total(),
            last_wipe_at,
        })
    }

    fn queue_changed(&self) {
        if let Ok(q) = self.queue() {
            (self.inner.events)(AppEvent::QueueChanged(q));
        }
    }

    /// The broker to ask and this device's token.
    fn broker(&self) -> AppResult<(String, SecretString)> {
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

    fn uploader(&self, url: &str, token: SecretString) -> AppResult<Uploader> {
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

    async fn drain(&self, on_progress: Option<Sink<UploadProgress>>) -> AppResult<()> {
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
    fn set_revoked(&self, revoked: bool) {
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
    async fn upload_worker(self) {
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

    /// The audit trail, newest first.
    pub fn activity(&self, limit: usize) -> AppResult<Vec<ActivityEntry>> {
        let entries = self.inner.ws.audit.entries()?;
        Ok(entries
            .into_iter()
            .rev()
            .take(limit.clamp(1, 10_000))
            .map(|e| ActivityEntry {
                summary: summarize(&e.event, &e.details),
                seq: e.seq,
                time: e.time,
                event: e.event,
            })
            .collect())
    }

    /// Saves theme and language.
    pub fn save_preferences(&self, theme: &str, language: &str) -> AppResult<AppState> {
        if !matches!(theme, "system" | "light" | "dark") {
            return Err(invalid("theme must be system, light or dark"));
        }
        if language.is_empty()
            || language.len() > 16
            || !language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid("language must be a tag such as en or pt-BR"));
        }
        let mut settings = self.inner.ws.settings()?;
        settings.theme = Some(theme.to_owned());
        settings.language = Some(language.to_owned());
        self.inner.ws.save_settings(&settings)?;
        *lock(&self.inner.lost_takes) = 0;
        self.state()
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

/// One line for the activity screen.
fn summarize(event: &str, d: &serde_json::Value) -> String {
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    match event {
        "take.recorded" => format!(
            "recorded a take of {:.1} s",
            d.get("duration_s").and_then(|v| v.as_f64()).unwrap_or(0.0)
        ),
        "take.sealed" => format!("sealed sample {} for prompt {}", s("sample"), s("prompt")),
        "spool.wiped" => "wiped the recording from this computer (key destroyed)".into(),
        "take.discarded" => format!("discarded a take ({})", s("why")),
        "spool.swept" => "removed a take that was never accepted (left by a crash)".into(),
        "item.uploaded" => format!("uploaded sample {}", s("sample")),
        "upload.already_stored" => format!("{} was already stored", s("key")),
        "upload.interrupted" => format!("upload of {} interrupted; it will resume", s("sample")),
        "upload.failed" => format!("upload of {} failed: {}", s("sample"), s("error")),
        "consent.given" => "consent recorded".into(),
        "enrollment.joined" => format!("enrolled as {}", s("contractor")),
        "mic.checked" => format!("microphone check: {}", s("verdict")),
        "prompt.skipped" => format!("skipped prompt {}", s("prompt")),
        "prompt.flagged" => format!("flagged prompt {}: {}", s("prompt"), s("reason")),
        "project.installed" => format!("project {} set up", s("project")),
        _ => event.replace('.', " "),
    }
}
