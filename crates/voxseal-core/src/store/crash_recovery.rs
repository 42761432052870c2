//! What [`Workspace::open`] finishes for a process that ended between renaming a sealed item
//! into the outbox and logging its `take.sealed` event (a SIGKILL, a power cut). The item is
//! complete ciphertext the contractor accepted, and its manifest anchors the log, so the next
//! start logs the event (marked `logged_after_crash`) and records the sample as its prompt's
//! current one, rather than leaving an item the audit log does not account for. A sealed take's
//! spool file that a crash kept from being wiped is wiped as usual, not reported as a lost take.

use std::collections::HashSet;

use crate::project::ids::{SampleId, TakeId};
use crate::project::manifest::Manifest;
use crate::store::audit::AuditEvent;
use crate::store::outbox::{ItemStatus, OutboxHeldStill};
use crate::store::progress::Progress;
use crate::store::workspace::{Workspace, WorkspaceError};

impl Workspace {
    /// Logs `take.sealed` for items that have none; returns their samples. A damaged log is
    /// left alone (`voxseal audit verify` reports it), so nothing is logged against it.
    pub(crate) fn log_unlogged_items(
        &self,
        _still: &OutboxHeldStill,
    ) -> Result<Vec<SampleId>, WorkspaceError> {
        let (items, _damaged) = self.outbox.list()?;
        let mut waiting = items
            .into_iter()
            .filter(|i| i.state.status != ItemStatus::Uploaded)
            .peekable();
        if waiting.peek().is_none() {
            return Ok(Vec::new());
        }
        let report = crate::store::audit::verify(self.audit.path()).map_err(|source| {
            WorkspaceError::Io {
                path: self.audit.path().display().to_string(),
                source,
            }
        })?;
        if report.first_bad.is_some() {
            return Ok(Vec::new());
        }
        let logged: HashSet<&str> = (report.entries.iter())
            .filter(|e| e.event == "take.sealed")
            .filter_map(|e| e.details.get("sample")?.as_str())
            .collect();
        let mut done = Vec::new();
        for item in waiting.filter(|i| !logged.contains(i.manifest.sample_id.as_str())) {
            self.audit
                .append(&AuditEvent::take_sealed(&item.manifest, true))?;
            self.complete_progress(&item.manifest)?;
            done.push(item.manifest.sample_id);
        }
        Ok(done)
    }

    /// Records `m`'s sample as its prompt's current one, unless the progress has moved past
    /// the sample it superseded (it has not, when the crash came first).
    fn complete_progress(&self, m: &Manifest) -> Result<(), WorkspaceError> {
        let Some(prompt) = &m.prompt_id else {
            return Ok(());
        };
        let io = |source| WorkspaceError::Io {
            path: self.root().join("progress.json").display().to_string(),
            source,
        };
        let mut progress = Progress::load(self.root(), &m.contractor, &m.project).map_err(io)?;
        if progress.current_sample(prompt) == m.supersedes {
            progress.accepted(prompt, &m.sample_id).map_err(io)?;
        }
        Ok(())
    }

    /// The sealed takes, when the spool holds files (a crash may have kept a sealed take's
    /// spool file from being wiped); empty otherwise, without reading the outbox.
    pub(crate) fn sealed_takes_if_spool_left(&self) -> Result<HashSet<TakeId>, WorkspaceError> {
        let spool = self.spool_dir();
        let left = crate::capture::spool::files(&spool).map_err(|source| WorkspaceError::Io {
            path: spool.display().to_string(),
            source,
        })?;
        if left.is_empty() {
            return Ok(HashSet::new());
        }
        let (items, _damaged) = self.outbox.list()?;
        Ok(items.into_iter().map(|i| i.manifest.take_id).collect())
    }
}
