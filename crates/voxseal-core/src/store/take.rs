//! A take's life after recording, the one path the app and the CLI share: the workspace puts a
//! recorded take under review ([`Workspace::review_take`]: analysed, `take.recorded` logged),
//! and the contractor then accepts it ([`TakeInReview::accept`]: sealed into the outbox, spool
//! wiped, prompt progress updated) or discards it ([`TakeInReview::discard`]). The rule "a take
//! that failed a check is sealed only when accepted despite it" lives here and nowhere else.

use crate::capture::recorder::RecordedTake;
use crate::dsp::quality::{Check, QualityReport, Verdict};
use crate::project::config::ProjectConfig;
use crate::project::ids::{ContractorId, PromptId, SampleId};
use crate::sealing::seal::{Review, SealContext, SealError, SealProgress};
use crate::store::audit::AuditEvent;
use crate::store::audit_event::DiscardReason;
use crate::store::outbox::OutboxItem;
use crate::store::progress::Progress;
use crate::store::workspace::{Workspace, WorkspaceError};

/// A recorded take under review: its quality report is made once, and it can only be accepted
/// or discarded. Dropping it wipes the spool file too (the key dies with the process).
#[derive(Debug)]
pub struct TakeInReview {
    take: RecordedTake,
    prompt: Option<PromptId>,
    quality: QualityReport,
}

/// How the contractor accepts a take.
#[derive(Debug, Clone, Default)]
pub struct Acceptance {
    /// Accept although a check failed (without it such a take is refused).
    pub despite_failed_checks: bool,
    /// The earlier sample this take replaces; `None`: the prompt's current sample, if any.
    pub supersedes: Option<SampleId>,
}

/// Why a take was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptRefused {
    /// A check failed and the take was not accepted despite it: it is handed back for review.
    #[error("the take failed {}; re-record it or accept it despite that", take.failed_check_names().join(", "))]
    FailedChecks {
        /// The take, still under review.
        take: TakeInReview,
    },
    /// Sealing failed (disk, a changed config, …): the take is handed back, still reviewable.
    #[error("{error}")]
    Sealing {
        /// Why.
        error: SealError,
        /// The take, still under review.
        take: TakeInReview,
    },
    /// The sample was sealed, but the prompt progress file could not be saved.
    #[error(
        "sample {} was sealed, but the prompt progress could not be saved: {error}",
        item.manifest.sample_id
    )]
    ProgressNotSaved {
        /// The sealed item.
        item: Box<OutboxItem>,
        /// Why.
        error: std::io::Error,
    },
}

impl AcceptRefused {
    /// The take, when it was handed back.
    pub fn into_take(self) -> Option<TakeInReview> {
        match self {
            Self::FailedChecks { take } | Self::Sealing { take, .. } => Some(take),
            Self::ProgressNotSaved { .. } => None,
        }
    }
}

impl Workspace {
    /// Puts a recorded take of `prompt` under review: analyses it and logs `take.recorded`.
    pub fn review_take(
        &self,
        take: RecordedTake,
        prompt: Option<PromptId>,
        config: &ProjectConfig,
    ) -> Result<TakeInReview, WorkspaceError> {
        self.audit.append(&AuditEvent::TakeRecorded {
            take: take.take_id.clone(),
            prompt: prompt.clone(),
            source: take.source.kind.clone(),
            sample_rate: take.source.sample_rate,
            duration_s: take.duration_s(),
            dropped: take.counters.dropped,
            interrupted: take.interrupted.is_some(),
            reached_limit: take.reached_limit(),
        })?;
        let quality = take.analyzer.clone().finish(&config.quality);
        Ok(TakeInReview {
            take,
            prompt,
            quality,
        })
    }
}

impl TakeInReview {
    /// The recorded take (its spool, source and counters).
    pub fn take(&self) -> &RecordedTake {
        &self.take
    }

    /// The prompt that was read.
    pub fn prompt(&self) -> Option<&PromptId> {
        self.prompt.as_ref()
    }

    /// The quality report.
    pub fn quality(&self) -> &QualityReport {
        &self.quality
    }

    /// The checks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.quality
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
    }

    fn failed_check_names(&self) -> Vec<&str> {
        self.failed_checks().map(|c| c.name.as_str()).collect()
    }

    /// Seals the take into the outbox under `config` (which must be the installed config),
    /// wipes its spool file, and records the sample as the prompt's current one.
    pub fn accept(
        self,
        ws: &Workspace,
        config: &ProjectConfig,
        contractor: &ContractorId,
        acceptance: &Acceptance,
        on_progress: &mut dyn FnMut(SealProgress),
    ) -> Result<OutboxItem, Box<AcceptRefused>> {
        if self.failed_checks().next().is_some() && !acceptance.despite_failed_checks {
            return Err(Box::new(AcceptRefused::FailedChecks { take: self }));
        }
        let refused = |error, take| Box::new(AcceptRefused::Sealing { error, take });
        let mut progress = match Progress::load(ws.root(), contractor, &config.project.name) {
            Ok(p) => p,
            Err(e) => return Err(refused(io_error("the prompt progress", e), self)),
        };
        let consent = match ws.consent_for(config) {
            Ok(c) => c,
            Err(e) => return Err(refused(SealError::ConfigChanged(e.to_string()), self)),
        };
        let review = Review {
            prompt_id: self.prompt.clone(),
            supersedes: acceptance.supersedes.clone().or_else(|| {
                self.prompt
                    .as_ref()
                    .and_then(|p| progress.current_sample(p))
            }),
            consent,
        };
        let item = match self.seal(ws, config, contractor, &review, on_progress) {
            Ok(item) => item,
            Err(error) => return Err(refused(error, self)),
        };
        self.wipe_sealed(ws);
        if let Some(prompt) = &review.prompt_id
            && let Err(error) = progress.accepted(prompt, &item.manifest.sample_id)
        {
            let item = Box::new(item);
            return Err(Box::new(AcceptRefused::ProgressNotSaved { item, error }));
        }
        Ok(item)
    }

    fn seal(
        &self,
        ws: &Workspace,
        config: &ProjectConfig,
        contractor: &ContractorId,
        review: &Review,
        on_progress: &mut dyn FnMut(SealProgress),
    ) -> Result<OutboxItem, SealError> {
        let config_sha256 = ws
            .project_sha256(config)
            .map_err(|e| SealError::ConfigChanged(e.to_string()))?;
        let ctx = SealContext {
            config,
            config_sha256: &config_sha256,
            contractor,
            outbox: &ws.outbox,
            audit: &ws.audit,
        };
        crate::sealing::seal::seal_take(&ctx, &self.take, &self.quality, review, on_progress)
    }

    /// After sealing: wipes the spool file (its key is zeroized on drop) and logs it.
    fn wipe_sealed(self, ws: &Workspace) {
        crate::fault::point("seal.committed");
        let take = self.take.take_id.clone();
        let wiped = self.take.spool.wipe();
        let _ = ws.audit.append(&AuditEvent::SpoolWiped {
            take,
            bytes: wiped.as_ref().map(|r| r.bytes_overwritten).ok(),
            error: wiped.as_ref().err().map(|e| e.to_string()),
        });
    }

    /// Discards the take: wipes its spool file, zeroizes its key, records why.
    pub fn discard(self, ws: &Workspace, why: DiscardReason) -> Result<(), WorkspaceError> {
        discard_recorded(ws, self.take, why)
    }
}

/// Discards a take that never reached review (e.g. a WAV file that could not be read to its
/// end).
pub fn discard_recorded(
    ws: &Workspace,
    take: RecordedTake,
    why: DiscardReason,
) -> Result<(), WorkspaceError> {
    let take_id = take.take_id.clone();
    let wiped = take.spool.wipe();
    ws.audit.append(&AuditEvent::TakeDiscarded {
        take: take_id,
        why,
        bytes: wiped.as_ref().map(|r| r.bytes_overwritten).ok(),
    })?;
    Ok(())
}

fn io_error(what: &str, source: std::io::Error) -> SealError {
    SealError::Io {
        what: what.into(),
        source,
    }
}
