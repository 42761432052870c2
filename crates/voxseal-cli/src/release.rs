//! Release integrity: `SHA256SUMS` over the release artifacts, signed with the project lead's key
//! (minisign), and the Tauri updater's per-artifact signatures (`<artifact>.sig`: base64 of a
//! minisign signature, checked against the updater public key pinned in the app).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use voxseal_core::project::signing::{self, Password, SignatureError};

/// Name of the checksum file.
pub const SUMS: &str = "SHA256SUMS";

/// Why a release does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// File system error.
    #[error("{path}: {detail}")]
    Io {
        /// The path.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The checksum file's signature failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// An artifact does not match its checksum.
    #[error("{file}: SHA-256 does not match SHA256SUMS (the file was changed after release)")]
    Mismatch {
        /// The artifact.
        file: String,
    },
    /// An artifact listed in SHA256SUMS is missing, or a file is not listed.
    #[error("{0}")]
    Listing(String),
    /// An updater signature failed.
    #[error(
        "{file}: the updater signature does not verify with the pinned updater key; the updater would refuse it"
    )]
    Updater {
        /// The artifact.
        file: String,
    },
}

fn io(p: &Path, e: impl std::fmt::Display) -> ReleaseError {
    ReleaseError::Io {
        path: p.display().to_string(),
        detail: e.to_string(),
    }
}

fn sha256_file(p: &Path) -> Result<String, ReleaseError> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).map_err(|e| io(p, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io(p, e))?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

fn artifacts(dir: &Path) -> Result<Vec<PathBuf>, ReleaseError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            n != SUMS && n != "SHA256SUMS.sig"
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Writes `SHA256SUMS` (every file in `dir`, `sha256sum` format) and signs it with the lead key.
pub fn sign_release(
    dir: &Path,
    lead_key: &Path,
    password: Option<Password>,
) -> Result<usize, ReleaseError> {
    let files = artifacts(dir)?;
    let mut sums = String::new();
    for f in &files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ReleaseError::Listing("non-UTF-8 file name".into()))?;
        sums.push_str(&format!("{}  {name}\n", sha256_file(f)?));
    }
    let sig = signing::sign(
        lead_key,
        password,
        sums.as_bytes(),
        "voxseal release checksums",
    )?;
    voxseal_core::store::fsutil::write_atomic(&dir.join(SUMS), sums.as_bytes(), false)
        .map_err(|e| io(dir, e))?;
    voxseal_core::store::fsutil::write_atomic(&dir.join("SHA256SUMS.sig"), sig.as_bytes(), false)
        .map_err(|e| io(dir, e))?;
    Ok(files.len())
}

/// What verification checked.
#[derive(Debug, Clone, Default)]
pub struct ReleaseReport {
    /// Artifacts whose checksum matched.
    pub verified: Vec<String>,
    /// Artifacts whose updater signature verified.
    pub updater_verified: Vec<String>,
}

/// Verifies `SHA256SUMS.sig` with `trusted` lead keys, every listed file's SHA-256, that no
/// unlisted file is present, and (with `updater_pubkey`, the base64 value from tauri.conf.json)
/// every `<artifact>.sig` the Tauri updater would check.
pub fn verify_release(
    dir: &Path,
    trusted: &[String],
    updater_pubkey: Option<&str>,
) -> Result<ReleaseReport, ReleaseError> {
    let sums = signing::verify_file(trusted, &dir.join(SUMS))?;
    let sums = String::from_utf8(sums)
        .map_err(|_| ReleaseError::Listing("SHA256SUMS is not UTF-8".into()))?;
    let mut listed = BTreeMap::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, name) = line
            .split_once("  ")
            .ok_or_else(|| ReleaseError::Listing(format!("bad SHA256SUMS line {line:?}")))?;
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(ReleaseError::Listing(format!(
                "SHA256SUMS names a path outside the release: {name:?}"
            )));
        }
        listed.insert(name.to_owned(), hash.to_owned());
    }
    let mut report = ReleaseReport::default();
    for f in artifacts(dir)? {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let want = listed
            .remove(&name)
            .ok_or_else(|| ReleaseError::Listing(format!("{name} is not listed in SHA256SUMS")))?;
        if sha256_file(&f)? != want {
            return Err(ReleaseError::Mismatch { file: name });
        }
        report.verified.push(name);
    }
    if let Some(missing) = listed.keys().next() {
        return Err(ReleaseError::Listing(format!(
            "{missing} is listed in SHA256SUMS but missing"
        )));
    }
    if let Some(pk_b64) = updater_pubkey {
        let b64 = base64::engine::general_purpose::STANDARD;
        let pk_text = String::from_utf8(
            b64.decode(pk_b64.trim())
                .map_err(|_| ReleaseError::Listing("updater key is not base64".into()))?,
        )
        .map_err(|_| ReleaseError::Listing("updater key is not text".into()))?;
        let key = signing::public_key_from_text(&pk_text)?;
        for name in report.verified.clone() {
            let Some(artifact) = name.strip_suffix(".sig") else {
                continue;
            };
            let sig_b64 =
                std::fs::read_to_string(dir.join(&name)).map_err(|e| io(&dir.join(&name), e))?;
            let sig = String::from_utf8(b64.decode(sig_b64.trim()).unwrap_or_default())
                .unwrap_or_default();
            let data = std::fs::read(dir.join(artifact)).map_err(|e| io(&dir.join(artifact), e))?;
            signing::verify(std::slice::from_ref(&key), &data, &sig, artifact).map_err(|_| {
                ReleaseError::Updater {
                    file: artifact.to_owned(),
                }
            })?;
            report.updater_verified.push(artifact.to_owned());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_refuse_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let lead = signing::generate_lead_key(
            &keys.path().join("lead.key"),
            &keys.path().join("lead.pub"),
            None,
        )
        .unwrap();
        let rel = dir.path();
        std::fs::write(rel.join("voxseal_0.1.0_amd64.deb"), b"deb bytes").unwrap();
        std::fs::write(rel.join("voxseal-0.1.0-1.x86_64.rpm"), b"rpm bytes").unwrap();
        assert_eq!(
            sign_release(rel, &keys.path().join("lead.key"), None).unwrap(),
            2
        );
        let r = verify_release(rel, std::slice::from_ref(&lead), None).unwrap();
        assert_eq!(r.verified.len(), 2);
        // A changed artifact.
        std::fs::write(rel.join("voxseal_0.1.0_amd64.deb"), b"deb bytes!").unwrap();
        assert!(matches!(
            verify_release(rel, std::slice::from_ref(&lead), None),
            Err(ReleaseError::Mismatch { .. })
        ));
        std::fs::write(rel.join("voxseal_0.1.0_amd64.deb"), b"deb bytes").unwrap();
        // An extra file, and a changed checksum list.
        std::fs::write(rel.join("evil.sh"), b"x").unwrap();
        assert!(matches!(
            verify_release(rel, std::slice::from_ref(&lead), None),
            Err(ReleaseError::Listing(_))
        ));
        std::fs::remove_file(rel.join("evil.sh")).unwrap();
        let sums = std::fs::read_to_string(rel.join(SUMS)).unwrap();
        std::fs::write(rel.join(SUMS), sums.replace("deb", "dxb")).unwrap();
        assert!(matches!(
            verify_release(rel, &[lead], None),
            Err(ReleaseError::Signature(_))
        ));
    }
}
