//! age identities and recipients.
//!
//! Contractors encrypt to X25519 *recipients* (public keys, `age1...`) and cannot decrypt. The
//! data team holds the training *identity* (secret key, `AGE-SECRET-KEY-1...`), an archivist the
//! archive identity. Identity files use age's own text format, so `age -d -i key.txt` reads them.

use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;

/// Why a key could not be made, read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A recipient string is not an X25519 age recipient.
    #[error("invalid age recipient {shown}: expected an X25519 public key starting with age1")]
    BadRecipient {
        /// The refused value, shortened.
        shown: String,
    },
    /// The identity file could not be read or holds no usable identity.
    #[error("cannot use identity file {path}: {detail}")]
    BadIdentityFile {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The output file exists; identities are never overwritten.
    #[error(
        "{path} already exists; refusing to overwrite a key (choose another path or delete it yourself)"
    )]
    Exists {
        /// The file.
        path: String,
    },
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Parses an X25519 age recipient (`age1...`).
pub fn parse_recipient(s: &str) -> Result<age::x25519::Recipient, KeyError> {
    age::x25519::Recipient::from_str(s.trim()).map_err(|_| KeyError::BadRecipient {
        shown: crate::project::ids::shown(s),
    })
}

/// Generates a new identity, writes it to `path` (mode 0600, never overwriting) in age's format,
/// and returns its recipient.
pub fn generate_identity_file(path: &Path, label: &str) -> Result<String, KeyError> {
    let shown = path.display().to_string();
    if path.exists() {
        return Err(KeyError::Exists { path: shown });
    }
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = identity.to_string();
    let text = zeroize::Zeroizing::new(format!(
        "# {label}\n# created: {}\n# public key: {recipient}\n# Keep this file secret and backed up: without it, what was sealed to this key cannot be decrypted.\n{}\n",
        crate::time::now_rfc3339(),
        secret.expose_secret()
    ));
    crate::store::fsutil::write_new_atomic(path, text.as_bytes(), true).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: shown.clone(),
            }
        } else {
            KeyError::Io {
                path: shown.clone(),
                source,
            }
        }
    })?;
    Ok(recipient)
}

/// Reads the identities in an age identity file (for `voxseal open`).
pub fn load_identities(path: &Path) -> Result<Vec<Box<dyn age::Identity>>, KeyError> {
    let shown = path.display().to_string();
    let bad = |detail: String| KeyError::BadIdentityFile {
        path: shown.clone(),
        detail,
    };
    let file = age::IdentityFile::from_file(shown.clone()).map_err(|e| bad(e.to_string()))?;
    let ids = file.into_identities().map_err(|e| bad(e.to_string()))?;
    if ids.is_empty() {
        return Err(bad("it holds no identities".into()));
    }
    Ok(ids
        .into_iter()
        .map(|i| i as Box<dyn age::Identity>)
        .collect())
}

/// The recipients (public keys) of the identities in an identity file.
pub fn recipients_of_identity_file(path: &Path) -> Result<Vec<String>, KeyError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::BadIdentityFile {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    let text = zeroize::Zeroizing::new(text);
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
    {
        let id = age::x25519::Identity::from_str(line).map_err(|e| KeyError::BadIdentityFile {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        out.push(id.to_public().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("training.key");
        let r = generate_identity_file(&p, "test key").unwrap();
        assert!(r.starts_with("age1"));
        assert!(parse_recipient(&r).is_ok());
        assert_eq!(load_identities(&p).unwrap().len(), 1);
        assert_eq!(recipients_of_identity_file(&p).unwrap(), vec![r]);
        assert!(matches!(
            generate_identity_file(&p, "x"),
            Err(KeyError::Exists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn bad_recipients_and_identity_files() {
        assert!(parse_recipient("age1notakey").is_err());
        assert!(parse_recipient("ssh-ed25519 AAAA").is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk");
        std::fs::write(&p, "hello\n").unwrap();
        assert!(load_identities(&p).is_err());
        assert!(load_identities(&dir.path().join("missing")).is_err());
    }
}
