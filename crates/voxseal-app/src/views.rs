//! What the UI shows: the app state, the upload queue, the activity trail, preferences.

use voxseal_core::project::manifest::Consent;
use voxseal_core::store::outbox::ItemStatus;

use crate::types::{
    ActivityEntry, AppState, Mode, PromptProgressView, PromptView, QueueItem, QueueState,
};
use crate::{App, AppError, AppResult, ErrorKind, demo, invalid, join, lock};

impl App {
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
            waiting_for_network: (status.progress.as_ref()).is_some_and(|p| p.waiting_for_network),
            raw_on_machine: self.inner.ws.raw_on_machine()?.total(),
            last_wipe_at,
        })
    }

    /// The audit trail, newest first.
    pub fn activity(&self, limit: usize) -> AppResult<Vec<ActivityEntry>> {
        let entries = self.inner.ws.audit.entries()?;
        Ok(entries
            .into_iter()
            .rev()
            .take(limit.clamp(1, 10_000))
            .map(|e| ActivityEntry {
                params: activity_params(&e.event, &e.details),
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
}

/// The details of an audit event the activity screen names, by event: ids, counts, seconds, a
/// verdict, the contractor's own flag reason. Nothing else crosses: not the error texts, object
/// keys, hashes or broker URLs the log also holds, and nothing of an event this list does not
/// know (the UI shows those by name).
const ACTIVITY_PARAMS: &[(&str, &[&str])] = &[
    ("take.recorded", &["prompt", "duration_s", "interrupted"]),
    ("take.sealed", &["sample", "prompt"]),
    ("take.discarded", &["why"]),
    ("spool.wiped", &[]),
    ("spool.swept", &[]),
    ("item.uploaded", &["sample"]),
    ("upload.already_stored", &["sample"]),
    ("upload.resumed", &["sample", "attempt"]),
    ("upload.restarted", &["sample"]),
    ("upload.interrupted", &["sample"]),
    ("upload.failed", &["sample"]),
    ("audit.checkpointed", &["seq"]),
    ("consent.given", &[]),
    ("enrollment.joined", &["contractor"]),
    ("mic.checked", &["verdict"]),
    ("prompt.skipped", &["prompt"]),
    ("prompt.flagged", &["prompt", "reason"]),
    ("project.installed", &["project", "serial"]),
    ("project.refused", &[]),
    ("outbox.swept", &[]),
    ("audit.recovered", &[]),
    ("audit.checkpoint_failed", &[]),
    ("contractor.configured", &["contractor"]),
];

/// The whitelisted scalar details of `event` (see [`ACTIVITY_PARAMS`]).
pub(crate) fn activity_params(
    event: &str,
    details: &serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    let keys = ACTIVITY_PARAMS
        .iter()
        .find(|(e, _)| *e == event)
        .map_or(&[][..], |(_, k)| *k);
    keys.iter()
        .filter_map(|k| {
            let v = details.get(*k)?;
            (v.is_string() || v.is_number() || v.is_boolean()).then(|| ((*k).to_owned(), v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::activity_params;

    #[test]
    fn activity_params_carry_only_whitelisted_scalars() {
        let p = activity_params(
            "upload.failed",
            &json!({ "sample": "s1", "error": "connection refused by 10.0.0.1" }),
        );
        assert_eq!(serde_json::Value::Object(p), json!({ "sample": "s1" }));
        let p = activity_params(
            "consent.given",
            &json!({ "contractor": "c", "text_sha256": "ab12" }),
        );
        assert!(p.is_empty(), "{p:?}");
        let p = activity_params(
            "take.recorded",
            &json!({ "take": "t", "prompt": "p001", "duration_s": 3.5, "dropped": 0, "interrupted": false }),
        );
        assert_eq!(
            serde_json::Value::Object(p),
            json!({ "prompt": "p001", "duration_s": 3.5, "interrupted": false })
        );
        // An object or array value never crosses, nor anything of an unknown event.
        let p = activity_params("item.uploaded", &json!({ "sample": { "nested": 1 } }));
        assert!(p.is_empty());
        assert!(activity_params("some.new_event", &json!({ "sample": "s" })).is_empty());
        // A discarded take's reason is a code (core's DiscardReason); its bytes stay out.
        let p = activity_params(
            "take.discarded",
            &json!({ "take": "t", "why": "rerecorded", "bytes": 1024 }),
        );
        assert_eq!(serde_json::Value::Object(p), json!({ "why": "rerecorded" }));
    }
}
