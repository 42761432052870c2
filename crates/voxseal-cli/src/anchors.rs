//! `voxseal audit verify --against`: checks the audit log against the anchors (the chain's head
//! at sealing time) that sealed manifests recorded, which shows lines cut off at the end of the
//! log and a chain rewritten from some line on; the chain alone shows neither. Each manifest's
//! `take.sealed` event (logged right after its anchor) must be there too. Audit checkpoints
//! (`*.checkpoint`, the log's head the uploader stores in the bucket after a drain) are checked
//! the same way, and reach past the newest sample: to the upload events after it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use voxseal_core::project::manifest::Manifest;
use voxseal_core::store::audit::{Checkpoint, VerifyReport, check_anchor, check_checkpoint};
use voxseal_core::store::key_layout::{
    contractor_of_checkpoint, is_bucket_manifest, is_checkpoint,
};

/// What checking the anchors found.
#[derive(Debug, Default)]
pub struct AnchorReport {
    /// Manifests read (each carries an anchor).
    pub anchored: usize,
    /// Audit checkpoints read.
    pub checkpoints: usize,
    /// The highest anchored (or checkpointed) event that holds.
    pub newest: u64,
    /// `(manifest, what is wrong)`.
    pub failures: Vec<(String, String)>,
}

/// Reads every manifest (`manifest.json`, or `<yyyy>/<mm>/<dd>/<sample>.json` as copied from
/// the bucket) and every audit checkpoint (`*.checkpoint`) under `sources` (directories, searched
/// a few levels deep, or files) and checks each against `report`.
pub fn check(report: &VerifyReport, sources: &[PathBuf]) -> Result<AnchorReport> {
    let mut files = Vec::new();
    for s in sources {
        if s.is_dir() {
            find(s, 6, &mut files)?;
        } else {
            files.push(s.clone());
        }
    }
    files.sort();
    let sealed: std::collections::HashSet<&str> = report
        .entries
        .iter()
        .filter(|e| e.event == "take.sealed")
        .filter_map(|e| e.details.get("sample").and_then(|s| s.as_str()))
        .collect();
    let mut out = AnchorReport::default();
    let mut unsealed = Vec::new();
    // The newest manifest anchor (checkpoints aside): the take whose line a crash may have torn.
    let mut newest_anchor = 0;
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        if is_checkpoint(&f) {
            out.checkpoints += 1;
            match checkpoint(report, &f, &bytes) {
                Ok(seq) => out.newest = out.newest.max(seq),
                Err(why) => out
                    .failures
                    .push((format!("checkpoint {}", f.display()), why)),
            }
            continue;
        }
        let m = Manifest::from_json(&bytes).with_context(|| f.display().to_string())?;
        let anchor = &m.audit_anchor;
        out.anchored += 1;
        let who = format!("sample {}", m.sample_id);
        if let Err(why) = check_anchor(report, anchor) {
            out.failures.push((who, why));
            continue;
        }
        out.newest = out.newest.max(anchor.seq);
        newest_anchor = newest_anchor.max(anchor.seq);
        if !sealed.contains(m.sample_id.as_str()) {
            unsealed.push((who, anchor.seq));
        }
    }
    for (who, seq) in unsealed {
        if !torn_after(report, seq, newest_anchor) {
            let why = format!(
                "the log holds its anchor (event {seq}) but no take.sealed event for it: lines after the anchor were cut off or rewritten"
            );
            out.failures.push((who, why));
        }
    }
    Ok(out)
}

/// Checks one checkpoint file: its contractor must be the one its bucket prefix names (when the
/// path still has `manifests/<c>/audit/`), and the log must hold its event with its hash.
fn checkpoint(report: &VerifyReport, path: &Path, bytes: &[u8]) -> Result<u64, String> {
    let cp = Checkpoint::from_json(bytes).map_err(|e| e.to_string())?;
    if let Some(prefix) = contractor_of_checkpoint(path)
        && prefix != cp.contractor.as_str()
    {
        return Err(format!(
            "it says contractor {} but is under {prefix}'s prefix: it was not written by that contractor",
            cp.contractor
        ));
    }
    check_checkpoint(report, &cp)?;
    Ok(cp.seq)
}

/// Whether a crash may have torn the take.sealed line after anchor `seq`: a later
/// `audit.recovered` event says so, and until the next append the newest sample's line may be
/// the torn tail itself.
fn torn_after(report: &VerifyReport, seq: u64, newest: u64) -> bool {
    report
        .entries
        .iter()
        .any(|e| e.seq > seq && e.event == "audit.recovered")
        || (report.torn_bytes > 0 && seq == newest)
}

/// Collects `manifest.json` files under `dir`, `depth` levels deep.
fn find(dir: &Path, depth: u32, into: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let t = e.file_type()?;
        if t.is_dir() && depth > 0 {
            find(&e.path(), depth - 1, into)?;
        } else if t.is_file()
            && (e.file_name() == voxseal_core::store::outbox::MANIFEST_FILE
                || is_bucket_manifest(&e.path())
                || is_checkpoint(&e.path()))
        {
            into.push(e.path());
        }
    }
    Ok(())
}
