//! The recording session: devices, the level meter, the microphone check, and a take from
//! recording through review to accepted or discarded.

use std::sync::Arc;
use std::time::Duration;

use voxseal_core::capture::audio::playback::Playback;
use voxseal_core::capture::audio::{DeviceInfo, Level};
use voxseal_core::capture::recorder::{Recorder, RecorderEvent, RecorderOptions};
use voxseal_core::dsp::pcm::PcmReplay;
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::ids::PromptId;
use voxseal_core::store::audit::AuditEvent;
use voxseal_core::store::audit_event::DiscardReason;
use voxseal_core::store::progress::Progress;
use voxseal_core::store::take::{AcceptRefused, Acceptance, TakeInReview};

use crate::types::{AppState, NoiseCheck, TakeReview};
use crate::{App, AppError, AppEvent, AppResult, ErrorKind, Sink, invalid, lock};

pub(crate) const PRE_ROLL: Duration = Duration::from_millis(200);
pub(crate) const POST_ROLL: Duration = Duration::from_millis(500);
pub(crate) const MIC_CHECK: Duration = Duration::from_secs(3);

pub(crate) struct UnderReview {
    pub(crate) take: TakeInReview,
    pub(crate) view: TakeReview,
}

/// What the recorder is recording now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Recording {
    /// The microphone check (never sealed).
    MicCheck,
    /// A take of a prompt.
    Take(PromptId),
}

#[derive(Default)]
pub(crate) struct Session {
    pub(crate) recorder: Option<Recorder>,
    pub(crate) recording: Option<Recording>,
    pub(crate) review: Option<UnderReview>,
    pub(crate) playback: Option<Playback>,
}

impl App {
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

    pub(crate) fn source_spec(&self) -> String {
        if let Some(s) = &self.inner.opts_source {
            return s.clone();
        }
        match self.inner.ws.settings().ok().and_then(|s| s.device) {
            Some(d) => format!("mic:{d}"),
            None => "mic".into(),
        }
    }

    /// Opens the recorder if it is not open (on the chosen device).
    pub(crate) fn ensure_recorder(&self, s: &mut Session) -> AppResult<()> {
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
    pub fn check_noise(&self) -> AppResult<NoiseCheck> {
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
        self.inner.ws.audit.append(&AuditEvent::MicChecked {
            verdict: check.verdict.clone(),
            noise_floor_dbfs: check.noise_floor_dbfs,
        })?;
        Ok(check.into())
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
        let take = (self.inner.ws).review_take(take, Some(prompt.clone()), &config)?;
        let waveform = voxseal_core::dsp::pcm::waveform(&take.take().spool, 400)?;
        let view = TakeReview::new(take.take(), &prompt, waveform, take.quality(), &config);
        lock(&self.inner.session).review = Some(UnderReview {
            take,
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
            let pb = voxseal_core::capture::audio::playback::play(
                &r.take.take().spool as &dyn PcmReplay,
            )
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
        let UnderReview { take, view } = lock(&self.inner.session)
            .review
            .take()
            .ok_or_else(|| AppError::new(ErrorKind::NoTake, "no take to accept"))?;
        let prompt = take.prompt().cloned().expect("app takes have a prompt");
        let acceptance = Acceptance {
            despite_failed_checks: accept_failed,
            supersedes: None,
        };
        let ws = &self.inner.ws;
        match take.accept(ws, &config, &contractor, &acceptance, &mut |_| {}) {
            Ok(_) => {
                let mut progress = self
                    .progress()?
                    .ok_or_else(|| AppError::new(ErrorKind::NotEnrolled, "enroll first"))?;
                self.advance(&mut progress, &config, &prompt)?;
                self.queue_changed();
                self.inner.upload_now.notify_one();
                self.state()
            }
            Err(refused) => {
                let kind = match *refused {
                    AcceptRefused::FailedChecks { .. } => ErrorKind::QualityFailed,
                    _ => ErrorKind::Storage,
                };
                let error = AppError::new(kind, refused.to_string());
                if let Some(take) = refused.into_take() {
                    lock(&self.inner.session).review = Some(UnderReview { take, view });
                }
                Err(error)
            }
        }
    }

    pub(crate) fn advance(
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
        (review.take).discard(&self.inner.ws, DiscardReason::ByContractor)?;
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
        self.inner.ws.audit.append(&match flag_reason {
            Some(reason) => AuditEvent::PromptFlagged {
                prompt: prompt.clone(),
                reason,
            },
            None => AuditEvent::PromptSkipped {
                prompt: prompt.clone(),
            },
        })?;
        self.advance(&mut progress, &config, &prompt)?;
        self.state()
    }

    pub(crate) fn not_busy(&self) -> AppResult<()> {
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
}
