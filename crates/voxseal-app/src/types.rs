//! The values the web view sees (docs/app-ipc.md), serialized as JSON.
//!
//! Words are the UI's: these types carry codes and numbers (a check's `code` and `values`, an
//! activity entry's `event` and `params`), never sentences for people. The only free text is the
//! contractor's and the project's own (prompts, consent, a flag reason) and, in error-like
//! fields (`message`, `last_error`, `detail`), the technical detail the UI shows under its own
//! sentence.

use std::collections::BTreeMap;

use serde::Serialize;
use voxseal_core::capture::audio::Level;
use voxseal_core::capture::recorder::{LIMIT_REACHED, RecordedTake};
use voxseal_core::dsp::quality::{Check, MicCheck, QualityReport, QualityThresholds, Verdict};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::ids::PromptId;

/// One prompt.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Prompt"))]
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
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "PromptProgress"))]
pub struct PromptProgressView {
    /// The prompt.
    pub prompt_id: String,
    /// `todo`, `accepted`, `skipped` or `flagged`.
    #[cfg_attr(test, ts(type = "PromptStatus"))]
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
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "ProjectInfo"))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The embedded demo stack, in a data directory of its own.
    Demo,
    /// A real project, enrolled through its broker.
    Project,
}

/// Everything the UI needs to render.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
    #[cfg_attr(test, ts(type = r#""system" | "light" | "dark""#))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
    pub quality: QualityView,
    /// Why it ended early, if it did.
    pub interrupted: Option<Interruption>,
}

impl TakeReview {
    /// The review of `take` of `prompt`, judged by `quality` under `config`'s thresholds.
    pub fn new(
        take: &RecordedTake,
        prompt: &PromptId,
        waveform: Vec<(f32, f32)>,
        quality: &QualityReport,
        config: &ProjectConfig,
    ) -> Self {
        Self {
            take_id: take.take_id.to_string(),
            prompt_id: prompt.to_string(),
            duration_s: take.duration_s(),
            waveform,
            quality: QualityView::new(quality, &config.quality),
            interrupted: take
                .interrupted
                .as_deref()
                .map(|why| Interruption::new(why, config.capture.max_take_s)),
        }
    }
}

/// Why a take ended before the contractor stopped it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interruption {
    /// The take reached the project's longest take (`capture.max_take_s`) and was cut there.
    Limit {
        /// The limit, seconds.
        limit_s: f64,
    },
    /// The input device failed mid-take (unplugged); the audio up to then is kept.
    DeviceLost {
        /// The device layer's own error text, for a technical detail line.
        detail: String,
    },
}

impl Interruption {
    /// From the recorder's `interrupted` text (which starts with `max_take_s` for a take cut at
    /// the limit).
    pub fn new(why: &str, max_take_s: f64) -> Self {
        if why.starts_with(LIMIT_REACHED) {
            Self::Limit {
                limit_s: max_take_s,
            }
        } else {
            Self::DeviceLost {
                detail: why.to_owned(),
            }
        }
    }
}

/// A take's measures and judged checks, as the UI renders them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "QualityReport"))]
pub struct QualityView {
    /// Length, seconds.
    pub duration_s: f64,
    /// Highest |sample|, dBFS.
    pub peak_dbfs: f64,
    /// RMS over the whole take, dBFS.
    pub rms_dbfs: f64,
    /// Fraction of samples at full scale.
    pub clipped_ratio: f64,
    /// Background level, dBFS.
    pub noise_floor_dbfs: f64,
    /// Speech level, dBFS.
    pub speech_dbfs: f64,
    /// Speech over background, dB.
    pub snr_db: f64,
    /// Detected speech `[start, end)`, seconds.
    pub speech_s: Option<(f64, f64)>,
    /// Silence before the speech, seconds.
    pub leading_silence_s: f64,
    /// Silence after the speech, seconds.
    pub trailing_silence_s: f64,
    /// Samples kept when trimming, `[start, end)`.
    pub trim: (u64, u64),
    /// The judged checks, in the core's order.
    pub checks: Vec<CheckView>,
    /// The worst verdict.
    #[cfg_attr(test, ts(type = "Verdict"))]
    pub overall: Verdict,
}

impl QualityView {
    /// The view of `r`, judged under `t` (the thresholds tell which side a warning is on).
    pub fn new(r: &QualityReport, t: &QualityThresholds) -> Self {
        Self {
            duration_s: r.duration_s,
            peak_dbfs: r.peak_dbfs,
            rms_dbfs: r.rms_dbfs,
            clipped_ratio: r.clipped_ratio,
            noise_floor_dbfs: r.noise_floor_dbfs,
            speech_dbfs: r.speech_dbfs,
            snr_db: r.snr_db,
            speech_s: r.speech_s,
            leading_silence_s: r.leading_silence_s,
            trailing_silence_s: r.trailing_silence_s,
            trim: r.trim,
            checks: r.checks.iter().map(|c| CheckView::new(c, r, t)).collect(),
            overall: r.overall,
        }
    }
}

/// One judged check: which check, its verdict, which case of it applies (`code`) and the
/// numbers its sentence needs. The UI says it in words (`quality.<name>.<code>` with `values`).
///
/// | name | code: values |
/// | --- | --- |
/// | `duration` | `short`, `long`, `ok`: `seconds` |
/// | `clipping` | `clipped`: `percent`; `none` |
/// | `speech` | `ok`: `seconds`; `none` |
/// | `level` | `quiet`, `loud`, `ok`: `dbfs` |
/// | `snr` | `low`, `ok`: `db` |
/// | `silence` | `before`, `after`: `seconds`; `ok`: `before`, `after` |
/// | `noise` | `noisy`, `ok`: `dbfs` |
///
/// A check this version does not know comes as `code` `unknown` without values.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Check"))]
pub struct CheckView {
    /// `duration`, `clipping`, `speech`, `level`, `snr`, `silence`, `noise`.
    pub name: String,
    /// The verdict.
    #[cfg_attr(test, ts(type = "Verdict"))]
    pub verdict: Verdict,
    /// Which case of the check applies.
    #[cfg_attr(test, ts(type = "string"))]
    pub code: &'static str,
    /// The measured numbers (seconds, dB, percent) the UI puts into its sentence.
    #[cfg_attr(test, ts(type = "Record<string, number>"))]
    pub values: BTreeMap<&'static str, f64>,
}

impl CheckView {
    /// The view of `c`, a check of `r` judged under `t`.
    pub fn new(c: &Check, r: &QualityReport, t: &QualityThresholds) -> Self {
        let pass = c.verdict == Verdict::Pass;
        let (code, values): (&'static str, Vec<(&'static str, f64)>) = match c.name.as_str() {
            "duration" => (
                match c.verdict {
                    Verdict::Pass => "ok",
                    Verdict::Warn => "long",
                    Verdict::Fail => "short",
                },
                vec![("seconds", r.duration_s)],
            ),
            "clipping" if pass => ("none", vec![]),
            "clipping" => ("clipped", vec![("percent", r.clipped_ratio * 100.0)]),
            "speech" if pass => (
                "ok",
                vec![("seconds", r.speech_s.map_or(0.0, |(a, b)| b - a))],
            ),
            "speech" => ("none", vec![]),
            "level" => (
                if pass {
                    "ok"
                } else if r.speech_dbfs > t.speech_warn_above_dbfs {
                    "loud"
                } else {
                    "quiet"
                },
                vec![("dbfs", r.speech_dbfs)],
            ),
            "snr" => (if pass { "ok" } else { "low" }, vec![("db", r.snr_db)]),
            "silence" if pass => (
                "ok",
                vec![
                    ("before", r.leading_silence_s),
                    ("after", r.trailing_silence_s),
                ],
            ),
            "silence" if r.leading_silence_s > t.silence_warn_above_s => {
                ("before", vec![("seconds", r.leading_silence_s)])
            }
            "silence" => ("after", vec![("seconds", r.trailing_silence_s)]),
            "noise" => (
                if pass { "ok" } else { "noisy" },
                vec![("dbfs", r.noise_floor_dbfs)],
            ),
            _ => ("unknown", vec![]),
        };
        Self {
            name: c.name.clone(),
            verdict: c.verdict,
            code,
            values: values.into_iter().collect(),
        }
    }
}

/// One outbox item for the queue screen.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct QueueItem {
    /// Sample id.
    pub sample_id: String,
    /// Prompt id.
    pub prompt_id: Option<String>,
    /// `sealed`, `uploading`, `uploaded`, `failed`.
    #[cfg_attr(test, ts(type = "ItemStatus"))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
    /// An upload is running, but no byte has left for a while (voxseal-cloud's
    /// `WAITING_AFTER`): it waits for the network and goes on when the connection is back.
    pub waiting_for_network: bool,
    /// Takes in the spool plus sealed raw audio not yet uploaded.
    pub raw_on_machine: usize,
    /// The newest spool wipe.
    pub last_wipe_at: Option<String>,
}

/// One audit event, for the activity screen: the event and the few of its details the UI
/// names (see `views::activity_params`); the UI says it in words (`activity.<event>`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ActivityEntry {
    /// Sequence number.
    pub seq: u64,
    /// Time.
    pub time: String,
    /// Event name, e.g. `take.sealed`.
    pub event: String,
    /// Whitelisted, non-secret details: ids, counts, seconds, a verdict, the contractor's own
    /// flag reason.
    #[cfg_attr(test, ts(type = "Record<string, string | number | boolean>"))]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// The voice-and-room check's verdict, without words: the UI says `noise.verdict.<verdict>`
/// with the numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NoiseCheck {
    /// Background level, dBFS.
    pub noise_floor_dbfs: f64,
    /// Loudest sample, dBFS.
    pub peak_dbfs: f64,
    /// `good`, `too_noisy`, `too_quiet` or `too_loud`.
    #[cfg_attr(test, ts(type = r#""good" | "too_noisy" | "too_quiet" | "too_loud""#))]
    pub verdict: String,
}

impl From<MicCheck> for NoiseCheck {
    fn from(m: MicCheck) -> Self {
        Self {
            noise_floor_dbfs: m.noise_floor_dbfs,
            peak_dbfs: m.peak_dbfs,
            verdict: m.verdict,
        }
    }
}

/// Re-exported for the shell.
pub type LevelView = Level;

/// An update the update endpoint offers (release builds).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UpdateOffer {
    /// The version offered.
    pub version: String,
    /// The version running now.
    pub current_version: String,
    /// The release notes, if any.
    pub notes: Option<String>,
}

/// Download progress: bytes so far, and the total when the server says it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct DownloadProgress {
    /// Bytes received.
    pub done: u64,
    /// The size announced, if any.
    pub total: Option<u64>,
}
