//! Reading the bucket's key layout back: the contractor an object key (or a downloaded copy's
//! path) names, checked against the manifest that claims the sample.
//!
//! ```text
//! raw/<contractor>/<yyyy>/<mm>/<dd>/<sample>-<hash>.wav.age
//! features/<contractor>/<yyyy>/<mm>/<dd>/<sample>-<hash>.safetensors.age
//! manifests/<contractor>/<yyyy>/<mm>/<dd>/<sample>.json
//! manifests/<contractor>/audit/<seq>-<hash>.checkpoint     (audit checkpoints, not samples)
//! ```
//! Only the contractor's credentials can write under its prefix, so the prefix is the one thing
//! about an object that the contractor's laptop cannot choose. A manifest whose `contractor`
//! differs from the prefix it was found under was written by someone else's credentials.
//!
//! ```
//! use std::path::Path;
//! use voxseal_core::store::key_layout::contractor_in_key;
//! let p = Path::new("dl/manifests/alice-01/2026/01/02/s.json");
//! assert_eq!(contractor_in_key(p), Some("alice-01"));
//! assert_eq!(contractor_in_key(Path::new("outbox/s/manifest.json")), None);
//! ```

use std::path::{Component, Path};

/// The top-level prefixes of the bucket.
pub const KINDS: [&str; 3] = ["raw", "features", "manifests"];

/// The contractor named by `path` if it ends in the bucket layout
/// (`<kind>/<contractor>/<yyyy>/<mm>/<dd>/<file>`, after any leading directories); `None` for
/// any other path (an outbox item, a file renamed by hand).
pub fn contractor_in_key(path: &Path) -> Option<&str> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_str()),
            Component::ParentDir => Some(None),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => None,
        })
        .collect::<Option<_>>()?;
    let [.., kind, contractor, yyyy, mm, dd, _file] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (KINDS.contains(kind) && digits(yyyy, 4) && digits(mm, 2) && digits(dd, 2))
        .then_some(*contractor)
}

/// The directory under `manifests/<contractor>/` that holds audit checkpoints
/// ([`crate::store::audit::Checkpoint`]); never a date, so sample readers that expect
/// `<yyyy>/<mm>/<dd>/` after the contractor do not take it for a sample.
pub const CHECKPOINT_DIR: &str = "audit";

/// Whether `path` names an audit checkpoint (by its `.checkpoint` suffix).
pub fn is_checkpoint(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.len() > crate::store::audit::CHECKPOINT_SUFFIX.len()
            && n.ends_with(crate::store::audit::CHECKPOINT_SUFFIX)
    })
}

/// The contractor named by a checkpoint's key (`manifests/<contractor>/audit/<file>`, after any
/// leading directories); `None` when `path` is not in that layout (e.g. a prefix downloaded
/// without its first two segments).
pub fn contractor_of_checkpoint(path: &Path) -> Option<&str> {
    let parts: Vec<&str> = path
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()
        .unwrap_or_default();
    match parts.as_slice() {
        [.., "manifests", contractor, CHECKPOINT_DIR, _file] if is_checkpoint(path) => {
            Some(contractor)
        }
        _ => None,
    }
}

/// Whether `path` is a sample manifest as copied from the bucket: `<yyyy>/<mm>/<dd>/<name>.json`
/// (with or without the `manifests/<contractor>/` before it).
pub fn is_bucket_manifest(path: &Path) -> bool {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    matches!(parts.as_slice(), [.., yyyy, mm, dd, file]
        if digits(yyyy, 4) && digits(mm, 2) && digits(dd, 2) && file.len() > 5 && file.ends_with(".json"))
}

/// A manifest claimed a sample found under another contractor's prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{path} is under contractor {prefix}'s prefix but its manifest says contractor {claimed}: \
     the manifest or the object was not written by that contractor; do not use this sample"
)]
pub struct PrefixMismatch {
    /// The path or key checked.
    pub path: String,
    /// The contractor in the key.
    pub prefix: String,
    /// The contractor in the manifest.
    pub claimed: String,
}

/// Checks that `path`, when it is in the bucket layout, is under `contractor`'s prefix.
/// Paths outside the layout have nothing to compare and pass.
pub fn check_contractor_prefix(path: &Path, contractor: &str) -> Result<(), PrefixMismatch> {
    match contractor_in_key(path) {
        Some(prefix) if prefix != contractor => Err(PrefixMismatch {
            path: path.display().to_string(),
            prefix: prefix.to_owned(),
            claimed: contractor.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_contractor_of_every_kind_of_key() {
        for key in [
            "raw/alice-01/2026/01/02/s-0123456789abcdef.wav.age",
            "features/alice-01/2026/01/02/s-0123456789abcdef.safetensors.age",
            "manifests/alice-01/2026/01/02/s.json",
            "/data/bucket/manifests/alice-01/2026/01/02/s.json",
        ] {
            assert_eq!(contractor_in_key(Path::new(key)), Some("alice-01"), "{key}");
        }
        for other in [
            "outbox/0190/manifest.json",
            "raw/alice-01/s.wav.age",
            "other/alice-01/2026/01/02/s.json",
            "raw/alice-01/26/01/02/s.json",
            "raw/alice-01/2026/01/../s.json",
        ] {
            assert_eq!(contractor_in_key(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn checkpoints_and_bucket_manifests_are_told_apart() {
        let cp = Path::new("dl/manifests/alice-01/audit/000000000042-0123456789abcdef.checkpoint");
        assert!(is_checkpoint(cp) && !is_bucket_manifest(cp));
        assert_eq!(contractor_of_checkpoint(cp), Some("alice-01"));
        assert_eq!(contractor_in_key(cp), None, "not a sample key");
        // Downloaded without the `manifests/<c>/` part: still a checkpoint, no contractor.
        let cp = Path::new("alice/audit/000000000042-0123456789abcdef.checkpoint");
        assert!(is_checkpoint(cp));
        assert_eq!(contractor_of_checkpoint(cp), None);
        for m in [
            "manifests/alice-01/2026/01/02/s.json",
            "alice-manifests/2026/01/02/s.json",
        ] {
            assert!(
                is_bucket_manifest(Path::new(m)) && !is_checkpoint(Path::new(m)),
                "{m}"
            );
        }
        for other in [
            "outbox/0190/state.json",
            "outbox/0190/manifest.json",
            "2026/01/02/s.checkpoint",
            "2026/1/02/s.json",
            ".checkpoint",
        ] {
            assert!(!is_bucket_manifest(Path::new(other)), "{other}");
        }
        assert!(!is_checkpoint(Path::new("audit/.checkpoint")));
    }

    #[test]
    fn a_manifest_under_another_contractors_prefix_is_refused() {
        let key = Path::new("manifests/bob-02/2026/01/02/s.json");
        assert!(check_contractor_prefix(key, "bob-02").is_ok());
        let e = check_contractor_prefix(key, "alice-01").unwrap_err();
        assert_eq!(
            (e.prefix.as_str(), e.claimed.as_str()),
            ("bob-02", "alice-01")
        );
        assert!(e.to_string().contains("do not use this sample"), "{e}");
        assert!(check_contractor_prefix(Path::new("x/manifest.json"), "alice-01").is_ok());
    }
}
