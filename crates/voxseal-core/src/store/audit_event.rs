//! Every event the local audit log records, typed: one place lists them all, with their fields,
//! so a writer cannot misspell a name or give one event two shapes. On disk an event is its
//! dotted `event` name and its `details` object (docs/format.md, "Audit log"); readers keep
//! reading entries as name + JSON, so a log from another build still verifies and lists.
//!
//! Details hold ids, sizes, hashes and verdicts only: never secrets, audio or features.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::project::ids::{ContractorId, PromptId, SampleId, TakeId};

/// One audit event. Fields are named for what they hold (ids, sizes, hashes, verdicts); only
/// the less obvious ones have a doc line.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "details")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A take ended and went to review (the app and the CLI record the same fields).
    #[serde(rename = "take.recorded")]
    TakeRecorded {
        take: TakeId,
        prompt: Option<PromptId>,
        /// `mic`, `file`, `synthetic`, …
        source: String,
        sample_rate: u32,
        duration_s: f64,
        dropped: u64,
        interrupted: bool,
        /// The take was cut at the project's `max_take_s`.
        reached_limit: bool,
    },
    /// A reviewed take was sealed into the outbox.
    #[serde(rename = "take.sealed")]
    TakeSealed {
        sample: SampleId,
        take: TakeId,
        prompt: Option<PromptId>,
        supersedes: Option<SampleId>,
        /// The failed checks the take was accepted despite.
        accepted_despite: Vec<String>,
        config_sha256: String,
        payloads: Vec<PayloadLogged>,
        /// Logged by the next start: the process that sealed it ended before it could.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        logged_after_crash: bool,
    },
    /// A take was thrown away: its spool file wiped, its key zeroized.
    #[serde(rename = "take.discarded")]
    TakeDiscarded {
        take: TakeId,
        why: DiscardReason,
        /// Bytes overwritten (`None`: the wipe failed; the file is unreadable without its key).
        bytes: Option<u64>,
    },
    /// A sealed take's spool file was wiped and its key zeroized.
    #[serde(rename = "spool.wiped")]
    SpoolWiped {
        take: TakeId,
        bytes: Option<u64>,
        error: Option<String>,
    },
    /// A spool file left by a process that ended before its take was sealed was wiped (its key
    /// died with that process, so it was unreadable).
    #[serde(rename = "spool.swept")]
    SpoolSwept { file: String, bytes: u64 },
    /// Staging directories of a sealing that was interrupted were removed (the take was not
    /// accepted).
    #[serde(rename = "outbox.swept")]
    OutboxSwept { staging: Vec<String> },
    /// The last line was cut off, most likely by a crash during a write, and was removed.
    #[serde(rename = "audit.recovered")]
    AuditRecovered { torn_bytes: u64 },
    /// A signed project config was installed.
    #[serde(rename = "project.installed")]
    ProjectInstalled {
        project: String,
        serial: u64,
        not_after: Option<String>,
        config_sha256: String,
        /// `new`, `updated from serial N`, `switched from project P`.
        change: String,
    },
    /// A project config was refused (signature, serial, expiry, …) and not installed.
    #[serde(rename = "project.refused")]
    ProjectRefused {
        /// Where it came from: a file, a link, the broker.
        origin: String,
        reason: String,
    },
    /// The contractor accepted the consent text with this hash.
    #[serde(rename = "consent.given")]
    ConsentGiven {
        contractor: Option<ContractorId>,
        text_sha256: String,
    },
    /// `voxseal init` set the contractor of this data directory.
    #[serde(rename = "contractor.configured")]
    ContractorConfigured {
        contractor: ContractorId,
        previous: Option<ContractorId>,
    },
    /// This computer was enrolled with a broker.
    #[serde(rename = "enrollment.joined")]
    EnrollmentJoined {
        contractor: ContractorId,
        broker: String,
        /// The project and serial installed with it (the CLI's `join`; the app installs and
        /// logs the project on its own).
        #[serde(skip_serializing_if = "Option::is_none")]
        project: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        serial: Option<u64>,
        /// Where the device token is kept: `keychain` or `encrypted_file` (the CLI says).
        #[serde(skip_serializing_if = "Option::is_none")]
        token_store: Option<String>,
    },
    /// The microphone check ran.
    #[serde(rename = "mic.checked")]
    MicChecked {
        /// `good`, `too_noisy`, `too_quiet`, `too_loud`.
        verdict: String,
        noise_floor_dbfs: f64,
    },
    /// A prompt was skipped without a reason.
    #[serde(rename = "prompt.skipped")]
    PromptSkipped { prompt: PromptId },
    /// A prompt was skipped and flagged with the contractor's reason.
    #[serde(rename = "prompt.flagged")]
    PromptFlagged { prompt: PromptId, reason: String },
    /// An upload resumed an item an earlier attempt had started.
    #[serde(rename = "upload.resumed")]
    UploadResumed {
        sample: SampleId,
        attempt: u32,
        objects_done: Vec<String>,
        parts_done: usize,
    },
    /// A create-only PUT found the object stored (412): the key carries the content hash, so an
    /// earlier attempt stored this exact content.
    #[serde(rename = "upload.already_stored")]
    UploadAlreadyStored { sample: String, key: String },
    /// The earlier multipart upload no longer exists: the object starts again.
    #[serde(rename = "upload.restarted")]
    UploadRestarted { sample: String, key: String },
    /// Every object of an item is stored and confirmed.
    #[serde(rename = "item.uploaded")]
    ItemUploaded {
        sample: SampleId,
        objects: BTreeMap<String, ObjectLogged>,
    },
    /// An upload stopped on a transient error; it resumes on the next drain.
    #[serde(rename = "upload.interrupted")]
    UploadInterrupted { sample: SampleId, error: String },
    /// An upload failed on an error that retrying will not mend.
    #[serde(rename = "upload.failed")]
    UploadFailed { sample: SampleId, error: String },
    /// The log's head was stored in the bucket (docs/format.md, "Checkpoints").
    #[serde(rename = "audit.checkpointed")]
    AuditCheckpointed { key: String, seq: u64, hash: String },
    /// The log's head could not be stored; it is tried again after the next upload.
    #[serde(rename = "audit.checkpoint_failed")]
    AuditCheckpointFailed { error: String },
}

/// Why a take was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscardReason {
    /// The contractor discarded it.
    ByContractor,
    /// The contractor chose to record it again.
    Rerecorded,
    /// It failed a quality check and was not accepted despite it (the CLI cannot keep it).
    FailedChecks,
    /// Sealing failed and the CLI, which cannot keep a take, dropped it.
    SealingFailed,
    /// A WAV file could not be read to its end: sealing a fragment would misrepresent it.
    UnreadableFile,
}

impl AuditEvent {
    /// The `take.sealed` event of a sealed item's manifest.
    pub fn take_sealed(m: &crate::project::manifest::Manifest, logged_after_crash: bool) -> Self {
        Self::TakeSealed {
            sample: m.sample_id.clone(),
            take: m.take_id.clone(),
            prompt: m.prompt_id.clone(),
            supersedes: m.supersedes.clone(),
            accepted_despite: m.accepted_despite.clone(),
            config_sha256: m.config_sha256.clone(),
            payloads: (m.payloads.iter())
                .map(|p| PayloadLogged {
                    kind: p.kind,
                    size: p.size,
                    sha256: p.sha256.clone(),
                })
                .collect(),
            logged_after_crash,
        }
    }
}

/// A sealed payload as `take.sealed` records it.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayloadLogged {
    pub kind: crate::project::manifest::PayloadKind,
    pub size: u64,
    pub sha256: String,
}

/// A stored object as `item.uploaded` records it.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectLogged {
    pub key: String,
    pub checksum: Option<String>,
    pub already_existed: bool,
}

/// What a hash-chained log line holds: a dotted name and a details object. The contractor's log
/// takes [`AuditEvent`]s; the broker's log has its own events (voxseal-broker's `audit`).
pub trait LogEvent {
    /// The dotted name and the details object written to the log.
    fn to_line_parts(&self) -> (String, serde_json::Value);
}

impl LogEvent for AuditEvent {
    fn to_line_parts(&self) -> (String, serde_json::Value) {
        let mut v = serde_json::to_value(self).expect("audit events serialize");
        let obj = v
            .as_object_mut()
            .expect("an adjacently tagged enum is an object");
        let name = match obj.remove("event") {
            Some(serde_json::Value::String(s)) => s,
            _ => unreachable!("every variant is renamed to its dotted name"),
        };
        let details = obj
            .remove("details")
            .unwrap_or_else(|| serde_json::json!({}));
        (name, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_becomes_its_dotted_name_and_a_details_object() {
        let take = TakeId::generate();
        let e = AuditEvent::TakeDiscarded {
            take: take.clone(),
            why: DiscardReason::ByContractor,
            bytes: Some(4096),
        };
        let (name, details) = e.to_line_parts();
        assert_eq!(name, "take.discarded");
        assert_eq!(
            details,
            serde_json::json!({"take": take.as_str(), "why": "by_contractor", "bytes": 4096})
        );
        let (name, details) = AuditEvent::PromptSkipped {
            prompt: "p001".parse().unwrap(),
        }
        .to_line_parts();
        assert_eq!(
            (name.as_str(), details),
            ("prompt.skipped", serde_json::json!({"prompt": "p001"}))
        );
    }
}
