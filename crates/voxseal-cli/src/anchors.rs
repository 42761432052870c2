//! `voxseal audit verify --against`: checks the audit log against the anchors (the chain's head
//! at sealing time) that sealed manifests recorded, which shows lines cut off at the end of the
//! log and a chain rewritten from some line on; the chain alone shows neither. Each manifest's
//! `take.sealed` event (logged right after its anchor) must be there too.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use voxseal_core::audit::{VerifyReport, check_anchor};
use voxseal_core::manifest::Manifest;

/// What checking the anchors found.
#[derive(Debug, Default)]
pub struct AnchorReport {
    /// Manifests read that carry an anchor.
    pub anchored: usize,
    /// Manifests without one (schema 1).
    pub unanchored: usize,
    /// The highest anchored event that holds.
    pub newest: u64,
    /// `(manifest, what is wrong)`.
    pub failures: Vec<(String, String)>,
}

/// Reads every `manifest.json` under `sources` (directories, searched a few levels deep, or
/// manifest files) and checks each anchor against `report`.
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
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        let m = Manifest::from_json(&bytes).with_context(|| f.display().to_string())?;
        let Some(anchor) = &m.audit_anchor else {
            out.unanchored += 1;
            continue;
        };
        out.anchored += 1;
        let who = format!("sample {}", m.sample_id);
        if let Err(why) = check_anchor(report, anchor) {
            out.failures.push((who, why));
            continue;
        }
        out.newest = out.newest.max(anchor.seq);
        if !sealed.contains(m.sample_id.as_str()) {
            unsealed.push((who, anchor.seq));
        }
    }
    for (who, seq) in unsealed {
        if !torn_after(report, seq, out.newest) {
            let why = format!(
                "the log holds its anchor (event {seq}) but no take.sealed event for it: lines after the anchor were cut off or rewritten"
            );
            out.failures.push((who, why));
        }
    }
    Ok(out)
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
        } else if t.is_file() && e.file_name() == voxseal_core::outbox::MANIFEST_FILE {
            into.push(e.path());
        }
    }
    Ok(())
}
