//! Lead signatures: the project config (and release checksums) are signed by the project lead
//! with an Ed25519 key in minisign format, and Voxseal refuses a config whose signature does not
//! verify against a trusted key. Otherwise swapping a recipient in `project.toml` would hand an
//! attacker every future sample.
//!
//! Trusted keys: a build with the `pinned-lead-key` feature (release builds) trusts exactly the
//! lead public key(s) in `VOXSEAL_LEAD_PUBKEY` at compile time (base64 minisign keys separated by
//! commas; the build fails without one) and nothing else. A build without it (development, QA,
//! the demo) pins nothing: callers add keys deliberately (the demo stack's own key in the demo's
//! data directory; a key file given explicitly to the CLI from outside the data directory), and
//! debug builds also trust `VOXSEAL_DEV_LEAD_PUBKEY` at run time, for tests.

use std::io::Cursor;
use std::path::Path;

/// Why signing or verification failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No trusted key is configured.
    #[error(
        "no trusted project-lead key: this build has none pinned (set VOXSEAL_LEAD_PUBKEY when building) and none was given"
    )]
    NoTrustedKey,
    /// The signature file is missing or unreadable.
    #[error("missing or unreadable signature {path}: {detail}")]
    Missing {
        /// The signature file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The signature does not verify with any trusted key.
    #[error(
        "the signature of {what} does not verify with the trusted project-lead key: it was changed after signing, or signed by someone else; refusing it"
    )]
    Invalid {
        /// What was checked.
        what: String,
    },
    /// A key or signature is malformed.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What.
        what: String,
        /// Details.
        detail: String,
    },
    /// Writing a key failed.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// A password (zeroized on drop).
pub type Password = zeroize::Zeroizing<String>;

/// The key(s) pinned at compile time (`pinned-lead-key` builds only).
#[cfg(feature = "pinned-lead-key")]
const PINNED: &str = match option_env!("VOXSEAL_LEAD_PUBKEY") {
    Some(k) => k,
    None => "",
};
#[cfg(not(feature = "pinned-lead-key"))]
const PINNED: &str = "";

#[cfg(feature = "pinned-lead-key")]
const _: () = assert!(
    !PINNED.is_empty(),
    "the pinned-lead-key feature needs VOXSEAL_LEAD_PUBKEY (the base64 line of lead.pub) at build time"
);

/// The keys this build trusts, in minisign base64 form.
pub fn pinned_lead_keys() -> Vec<String> {
    let mut keys: Vec<String> = PINNED
        .split(',')
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if cfg!(debug_assertions)
        && !has_pinned_key()
        && let Ok(k) = std::env::var("VOXSEAL_DEV_LEAD_PUBKEY")
    {
        keys.extend(
            k.split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty()),
        );
    }
    keys
}

/// True when this build has a lead key pinned (the `pinned-lead-key` feature): it then trusts
/// no other key, whatever the caller or the environment says.
pub fn has_pinned_key() -> bool {
    cfg!(feature = "pinned-lead-key")
}

/// Extracts the base64 key from a minisign public key file's text (or a bare base64 key).
pub fn public_key_from_text(text: &str) -> Result<String, SignatureError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| SignatureError::Malformed {
            what: "public key".into(),
            detail: "empty".into(),
        })?;
    minisign::PublicKey::from_base64(line).map_err(|e| SignatureError::Malformed {
        what: "public key".into(),
        detail: e.to_string(),
    })?;
    Ok(line.to_owned())
}

/// Generates a lead signing key: the secret key (encrypted with `password`, or unencrypted when
/// `None`) to `secret_path` (mode 0600, never overwritten) and the public key to `public_path`.
/// Returns the public key in base64.
pub fn generate_lead_key(
    secret_path: &Path,
    public_path: &Path,
    password: Option<Password>,
) -> Result<String, SignatureError> {
    let io = |p: &Path, e: &dyn std::fmt::Display| SignatureError::Io {
        path: p.display().to_string(),
        detail: e.to_string(),
    };
    let kp = match password {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p.to_string())),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| io(secret_path, &e))?;
    let sk_box = kp
        .sk
        .to_box(Some("voxseal project lead signing key"))
        .map_err(|e| io(secret_path, &e))?;
    let pk_box = kp.pk.to_box().map_err(|e| io(public_path, &e))?;
    crate::store::fsutil::write_new_atomic(secret_path, sk_box.into_string().as_bytes(), true)
        .map_err(|e| io(secret_path, &e))?;
    crate::store::fsutil::write_new_atomic(public_path, pk_box.into_string().as_bytes(), false)
        .map_err(|e| io(public_path, &e))?;
    Ok(kp.pk.to_base64())
}

/// Signs `data` with the secret key at `secret_path`; returns the signature file's text.
pub fn sign(
    secret_path: &Path,
    password: Option<Password>,
    data: &[u8],
    trusted_comment: &str,
) -> Result<String, SignatureError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(secret_path).map_err(|e| {
        SignatureError::Io {
            path: secret_path.display().to_string(),
            detail: e.to_string(),
        }
    })?);
    let sk_box =
        minisign::SecretKeyBox::from_string(&text).map_err(|e| SignatureError::Malformed {
            what: "secret key".into(),
            detail: e.to_string(),
        })?;
    let sk = match password {
        Some(p) => sk_box.into_secret_key(Some(p.to_string())),
        None => sk_box.into_unencrypted_secret_key(),
    }
    .map_err(|e| SignatureError::Malformed {
        what: "secret key".into(),
        detail: e.to_string(),
    })?;
    let sig =
        minisign::sign(None, &sk, Cursor::new(data), Some(trusted_comment), None).map_err(|e| {
            SignatureError::Malformed {
                what: "signature".into(),
                detail: e.to_string(),
            }
        })?;
    Ok(sig.into_string())
}

/// Verifies `sig_text` over `data` against any of `trusted` (base64 keys).
pub fn verify(
    trusted: &[String],
    data: &[u8],
    sig_text: &str,
    what: &str,
) -> Result<(), SignatureError> {
    if trusted.is_empty() {
        return Err(SignatureError::NoTrustedKey);
    }
    let sig =
        minisign::SignatureBox::from_string(sig_text).map_err(|e| SignatureError::Malformed {
            what: format!("signature of {what}"),
            detail: e.to_string(),
        })?;
    for k in trusted {
        let Ok(pk) = minisign::PublicKey::from_base64(k) else {
            continue;
        };
        if minisign::verify(&pk, &sig, Cursor::new(data), true, false, false).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Invalid {
        what: what.to_owned(),
    })
}

/// Verifies `file` against `<file>.sig`.
pub fn verify_file(trusted: &[String], file: &Path) -> Result<Vec<u8>, SignatureError> {
    let sig_path = sig_path(file);
    let data = std::fs::read(file).map_err(|e| SignatureError::Io {
        path: file.display().to_string(),
        detail: e.to_string(),
    })?;
    let sig = std::fs::read_to_string(&sig_path).map_err(|e| SignatureError::Missing {
        path: sig_path.display().to_string(),
        detail: e.to_string(),
    })?;
    verify(trusted, &data, &sig, &file.display().to_string())?;
    Ok(data)
}

/// `<file>.sig`.
pub fn sig_path(file: &Path) -> std::path::PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sig");
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_refuse_changes_or_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = (dir.path().join("lead.key"), dir.path().join("lead.pub"));
        let key = generate_lead_key(&sk, &pk, None).unwrap();
        assert_eq!(
            public_key_from_text(&std::fs::read_to_string(&pk).unwrap()).unwrap(),
            key
        );
        let data = b"[project]\nname = \"demo\"\n";
        let sig = sign(&sk, None, data, "voxseal project config").unwrap();
        verify(std::slice::from_ref(&key), data, &sig, "project.toml").unwrap();
        let changed = b"[project]\nname = \"dem0\"\n";
        assert!(matches!(
            verify(std::slice::from_ref(&key), changed, &sig, "x"),
            Err(SignatureError::Invalid { .. })
        ));
        let (sk2, pk2) = (dir.path().join("other.key"), dir.path().join("other.pub"));
        let other = generate_lead_key(&sk2, &pk2, None).unwrap();
        assert!(matches!(
            verify(&[other], data, &sig, "x"),
            Err(SignatureError::Invalid { .. })
        ));
        assert!(matches!(
            verify(&[], data, &sig, "x"),
            Err(SignatureError::NoTrustedKey)
        ));
        assert!(matches!(
            verify(std::slice::from_ref(&key), data, "garbage", "x"),
            Err(SignatureError::Malformed { .. })
        ));
        // Keys are never overwritten.
        assert!(generate_lead_key(&sk, &pk, None).is_err());
    }

    #[test]
    fn encrypted_keys_need_their_password() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = (dir.path().join("lead.key"), dir.path().join("lead.pub"));
        let key = generate_lead_key(&sk, &pk, Some(Password::new("hunter22".into()))).unwrap();
        assert!(sign(&sk, Some(Password::new("wrong".into())), b"x", "c").is_err());
        let sig = sign(&sk, Some(Password::new("hunter22".into())), b"x", "c").unwrap();
        verify(&[key], b"x", &sig, "x").unwrap();
    }
}
