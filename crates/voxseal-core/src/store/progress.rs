//! Per-contractor progress through the project's prompt set (`progress.json` in the data
//! directory), so a restart resumes where the contractor stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::project::ids::{ContractorId, PromptId, SampleId};

/// Where a prompt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PromptStatus {
    /// Not recorded yet.
    #[default]
    Todo,
    /// At least one take accepted.
    Accepted,
    /// Skipped without a reason.
    Skipped,
    /// Skipped and flagged as a bad prompt.
    Flagged,
}

/// One prompt's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PromptProgress {
    /// The prompt.
    pub prompt_id: Option<PromptId>,
    /// Where it is.
    pub status: PromptStatus,
    /// The current (latest accepted) sample.
    pub sample_id: Option<SampleId>,
    /// Accepted takes, re-recordings included.
    pub versions: u32,
    /// Why it was flagged.
    pub flag_reason: Option<String>,
}

/// The progress file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressFile {
    contractor: Option<ContractorId>,
    project: String,
    current: usize,
    prompts: BTreeMap<String, PromptProgress>,
}

/// Progress through one project's prompts for one contractor.
#[derive(Debug, Clone)]
pub struct Progress {
    path: PathBuf,
    file: ProgressFile,
}

impl Progress {
    /// Loads (or starts) the progress of `contractor` on `project` from `dir/progress.json`. A file
    /// for another contractor or project is not used (a new file replaces it on the next save).
    pub fn load(dir: &Path, contractor: &ContractorId, project: &str) -> std::io::Result<Self> {
        let path = dir.join("progress.json");
        let fresh = ProgressFile {
            contractor: Some(contractor.clone()),
            project: project.to_owned(),
            ..Default::default()
        };
        let file = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<ProgressFile>(&bytes) {
                Ok(f) if f.contractor.as_ref() == Some(contractor) && f.project == project => f,
                Ok(_) => fresh,
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    ));
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh,
            Err(e) => return Err(e),
        };
        Ok(Self { path, file })
    }

    fn save(&self) -> std::io::Result<()> {
        crate::store::fsutil::write_json_atomic(&self.path, &self.file)
    }

    /// A prompt's progress.
    pub fn get(&self, id: &PromptId) -> PromptProgress {
        self.file
            .prompts
            .get(id.as_str())
            .cloned()
            .unwrap_or_else(|| PromptProgress {
                prompt_id: Some(id.clone()),
                ..Default::default()
            })
    }

    /// The prompt index to show.
    pub fn current(&self) -> usize {
        self.file.current
    }

    /// Moves to a prompt index.
    pub fn set_current(&mut self, index: usize) -> std::io::Result<()> {
        self.file.current = index;
        self.save()
    }

    /// Records an accepted sample; returns the sample it supersedes, if any.
    pub fn accepted(
        &mut self,
        id: &PromptId,
        sample: &SampleId,
    ) -> std::io::Result<Option<SampleId>> {
        let mut p = self.get(id);
        let previous = p.sample_id.replace(sample.clone());
        p.status = PromptStatus::Accepted;
        p.versions += 1;
        p.flag_reason = None;
        self.file.prompts.insert(id.to_string(), p);
        self.save()?;
        Ok(previous)
    }

    /// The sample a new take of this prompt would supersede.
    pub fn current_sample(&self, id: &PromptId) -> Option<SampleId> {
        self.get(id).sample_id
    }

    /// Skips a prompt, flagging it when a reason is given.
    pub fn skipped(&mut self, id: &PromptId, flag_reason: Option<String>) -> std::io::Result<()> {
        let mut p = self.get(id);
        p.status = match (flag_reason.is_some(), p.status) {
            (true, _) => PromptStatus::Flagged,
            (false, PromptStatus::Accepted) => PromptStatus::Accepted,
            (false, _) => PromptStatus::Skipped,
        };
        p.flag_reason = flag_reason;
        self.file.prompts.insert(id.to_string(), p);
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_tracks_versions() {
        let dir = tempfile::tempdir().unwrap();
        let c: ContractorId = "alice-01".parse().unwrap();
        let p1: PromptId = "p1".parse().unwrap();
        let (s1, s2) = (SampleId::generate(), SampleId::generate());
        let mut p = Progress::load(dir.path(), &c, "demo").unwrap();
        assert_eq!(p.accepted(&p1, &s1).unwrap(), None);
        assert_eq!(p.accepted(&p1, &s2).unwrap(), Some(s1));
        p.set_current(3).unwrap();
        let p = Progress::load(dir.path(), &c, "demo").unwrap();
        let g = p.get(&p1);
        assert_eq!(
            (g.status, g.versions, g.sample_id),
            (PromptStatus::Accepted, 2, Some(s2))
        );
        assert_eq!(p.current(), 3);
        // Another contractor or project starts fresh.
        let other = Progress::load(dir.path(), &"bob-02".parse().unwrap(), "demo").unwrap();
        assert_eq!(other.get(&p1).status, PromptStatus::Todo);
    }

    #[test]
    fn skip_and_flag() {
        let dir = tempfile::tempdir().unwrap();
        let c: ContractorId = "alice-01".parse().unwrap();
        let mut p = Progress::load(dir.path(), &c, "demo").unwrap();
        let p2: PromptId = "p2".parse().unwrap();
        p.skipped(&p2, None).unwrap();
        assert_eq!(p.get(&p2).status, PromptStatus::Skipped);
        p.skipped(&p2, Some("typo in the prompt".into())).unwrap();
        assert_eq!(p.get(&p2).status, PromptStatus::Flagged);
        assert_eq!(
            p.get(&p2).flag_reason.as_deref(),
            Some("typo in the prompt")
        );
    }
}
