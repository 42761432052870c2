//! The values the web view sees (docs/app-ipc.md), serialized as JSON.

use serde::Serialize;
use voxseal_core::capture::audio::Level;
use voxseal_core::dsp::quality::{MicCheck, QualityReport};

/// One prompt.
#[derive(Debug, Clone, Serialize)]
pub struct PromptView {
    /// Id.
    pub id: String,
    /// Text to read.
    pub text: String,
    /// Optional hint.
    pub note: Option<String>,
}

/// A prompt's progress.
#[derive(Debug, Clone, Serialize)]
pub struct PromptProgressView {
    /// The prompt.
    pub prompt_id: String,
    /// `todo`, `accepted`, `skipped` or `flagged`.
    pub status: voxseal_core::store::progress::PromptStatus,
    /// The current sample.
    pub sample_id: Option<String>,
    /// Accepted takes.
    pub versions: u32,
    /// Why it was flagged.
    pub flag_reason: Option<String>,
}

/// The project, as far as the UI needs it.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectView {
    /// Name.
    pub name: String,
    /// Consent text.
    pub consent_text: String,
    /// Features-only mode.
    pub features_only: bool,
    /// Number of prompts.
    pub prompt_count: usize,
    /// The signed config's serial.
    pub serial: u64,
    /// When the signed config expires (RFC 3339), if it does.
    pub not_after: Option<String>,
}

/// What joining a project would install: shown before the code is redeemed.
#[derive(Debug, Clone, Serialize)]
pub struct JoinPreview {
    /// The project, from the config the broker served, verified against the pinned lead key.
    pub project: ProjectView,
    /// The broker the link names.
    pub broker: String,
    /// The installed project this would replace (switching is an explicit choice).
    pub replaces: Option<String>,
}

/// Something about the installed project the contractor should see once.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProjectNotice {
    /// The lead signed a newer config; it was installed on the last broker contact.
    Updated {
        /// The serial replaced.
        from_serial: u64,
        /// The serial installed.
        to_serial: u64,
    },
    /// The broker offered a config that was refused (older serial, bad signature, expired).
    Refused {
        /// Why.
        message: String,
    },
}

/// Which project the app works for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The embedded demo stack, in a data directory of its own.
    Demo,
    /// A real project, enrolled through its broker.
    Project,
}

/// Everything the UI needs to render.
#[derive(Debug, Clone, Serialize)]
pub struct AppState {
    /// Demo or project.
    pub mode: Mode,
    /// This build contains the demo ("Try a demo"); release builds with a pinned lead key do not.
    pub demo_available: bool,
    /// A change to the installed project to show once.
    pub project_notice: Option<ProjectNotice>,
    /// A device token is stored.
    pub enrolled: bool,
    /// The contractor.
    pub contractor: Option<String>,
    /// The project.
    pub project: Option<ProjectView>,
    /// Consent recorded.
    pub consent_given: bool,
    /// Chosen input device (None: default).
    pub device: Option<String>,
    /// Prompts.
    pub prompts: Vec<PromptView>,
    /// Progress per prompt, in prompt order.
    pub progress: Vec<PromptProgressView>,
    /// Prompt to show.
    pub current_prompt: usize,
    /// Unaccepted takes lost to a crash (reported once).
    pub lost_takes: usize,
    /// `system`, `light` or `dark`.
    pub theme: String,
    /// UI language.
    pub language: String,
    /// A mic check was done.
    pub mic_checked: bool,
    /// The take under review.
    pub review: Option<TakeReview>,
    /// Demo mode: a code for the demo contractor.
    pub demo_code: Option<String>,
    /// The `voxseal://enroll` link the app was opened with, or the newest one a second launch
    /// handed over, until an enrollment uses it: to confirm on the enroll screen.
    pub enroll_link: Option<String>,
}

/// A recorded take, for review.
#[derive(Debug, Clone, Serialize)]
pub struct TakeReview {
    /// Take id.
    pub take_id: String,
    /// Prompt id.
    pub prompt_id: String,
    /// Seconds.
    pub duration_s: f64,
    /// (min, max) pairs for drawing.
    pub waveform: Vec<(f32, f32)>,
    /// Quality checks.
    pub quality: QualityReport,
    /// Why it ended early: the device was lost, or (starting with `max_take_s:`) the take
    /// reached the project's longest take and was cut there.
    pub interrupted: Option<String>,
}

/// One outbox item for the queue screen.
#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    /// Sample id.
    pub sample_id: String,
    /// Prompt id.
    pub prompt_id: Option<String>,
    /// `sealed`, `uploading`, `uploaded`, `failed`.
    pub status: voxseal_core::store::outbox::ItemStatus,
    /// Payload bytes.
    pub bytes_total: u64,
    /// Payload bytes uploaded.
    pub bytes_done: u64,
    /// Why it failed.
    pub last_error: Option<String>,
    /// When sealed.
    pub sealed_at: String,
}

/// The queue screen.
#[derive(Debug, Clone, Serialize)]
pub struct QueueState {
    /// Items, oldest first.
    pub items: Vec<QueueItem>,
    /// False after a failed attempt to reach the broker or S3.
    pub online: bool,
    /// The broker refused this enrollment as revoked on the last try: uploads stop, sealed
    /// takes stay on this computer until the contractor enrolls again.
    pub revoked: bool,
    /// An upload is running.
    pub uploading: bool,
    /// Takes in the spool plus sealed raw audio not yet uploaded.
    pub raw_on_machine: usize,
    /// The newest spool wipe.
    pub last_wipe_at: Option<String>,
}

/// One audit event, readable.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityEntry {
    /// Sequence number.
    pub seq: u64,
    /// Time.
    pub time: String,
    /// Event name.
    pub event: String,
    /// A one-line summary.
    pub summary: String,
}

/// Re-exported for the shell.
pub type LevelView = Level;
/// Re-exported for the shell.
pub type NoiseCheck = MicCheck;
