//! Object keys in the bucket.
//!
//! ```text
//! raw/<contractor>/<yyyy>/<mm>/<dd>/<sample>-<hash>.wav.age
//! features/<contractor>/<yyyy>/<mm>/<dd>/<sample>-<hash>.safetensors.age
//! manifests/<contractor>/<yyyy>/<mm>/<dd>/<sample>.json
//! manifests/<contractor>/audit/<seq>-<hash>.checkpoint
//! ```
//! `<hash>` is the first 16 hex digits of the ciphertext's SHA-256 and the date is the sealing
//! date (UTC), so a key never names two different contents: a `412 Precondition Failed` on
//! `If-None-Match: *` means "already stored by an earlier attempt". Audit checkpoints are named by
//! the audit log head they record (its seq, 12 digits, and the first 16 hex digits of its hash).

use voxseal_core::project::manifest::{Manifest, PayloadKind};
use voxseal_core::store::audit::Checkpoint;
use voxseal_core::store::key_layout::CHECKPOINT_DIR;

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A sealed payload.
    Payload(PayloadKind),
    /// The manifest (uploaded last).
    Manifest,
}

impl ObjectKind {
    /// The name used in the item's state (`raw`, `features`, `manifest`).
    pub fn state_name(self) -> &'static str {
        match self {
            Self::Payload(k) => k.as_str(),
            Self::Manifest => "manifest",
        }
    }
}

fn date_path(m: &Manifest) -> String {
    // sealed_at is RFC 3339 UTC written by us: "2026-11-27T09:01:03.123Z".
    let d = voxseal_core::time::parse_rfc3339(&m.sealed_at)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    format!("{:04}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The key of an object of a sample.
pub fn object_key(m: &Manifest, kind: ObjectKind) -> String {
    let c = m.contractor.as_str();
    let date = date_path(m);
    match kind {
        ObjectKind::Payload(k) => {
            let hash = m
                .payload(k)
                .map(|p| &p.sha256[..16])
                .unwrap_or("0000000000000000");
            let (top, ext) = match k {
                PayloadKind::Raw => ("raw", "wav.age"),
                PayloadKind::Features => ("features", "safetensors.age"),
            };
            format!("{top}/{c}/{date}/{}-{hash}.{ext}", m.sample_id)
        }
        ObjectKind::Manifest => format!("manifests/{c}/{date}/{}.json", m.sample_id),
    }
}

/// The key of an audit checkpoint: under its contractor's `manifests/` prefix, in a directory that
/// is not a date, with a name that does not end in `.json` (not a sample manifest).
pub fn checkpoint_key(cp: &Checkpoint) -> String {
    format!(
        "manifests/{}/{CHECKPOINT_DIR}/{}",
        cp.contractor.as_str(),
        cp.file_name()
    )
}
