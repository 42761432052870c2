//! Where this device's enrollment token lives.
//!
//! In the OS keychain (macOS Keychain, Windows Credential Manager, the Secret Service on Linux
//! desktops) when there is one; otherwise in `device-token.enc` in the data directory, encrypted
//! with ChaCha20-Poly1305 under a key derived from a passphrase with Argon2id. Which one is used,
//! the contractor id and the broker URL (none of them secret) are recorded in `enrollment.toml`.

use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use voxseal_core::project::ids::ContractorId;
use zeroize::Zeroizing;

const SERVICE: &str = "voxseal";
const FILE: &str = "device-token.enc";
const INFO: &str = "enrollment.toml";

/// Where the token is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The OS keychain.
    Keychain,
    /// `device-token.enc`, passphrase-encrypted.
    EncryptedFile,
}

/// What is known about this device's enrollment (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The contractor.
    pub contractor: ContractorId,
    /// The broker it enrolled with.
    pub broker_url: String,
    /// Where the token is.
    pub backend: Backend,
    /// When (RFC 3339 UTC).
    pub enrolled_at: String,
}

/// Why the token could not be stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenStoreError {
    /// Not enrolled.
    #[error("this machine is not enrolled: run `voxseal enroll join <code>`")]
    NotEnrolled,
    /// The encrypted file needs a passphrase and none was given.
    #[error(
        "the enrollment token is stored in an encrypted file: set VOXSEAL_TOKEN_PASSPHRASE or enter the passphrase"
    )]
    NeedPassphrase,
    /// Wrong passphrase or a damaged file.
    #[error("cannot decrypt {0}: wrong passphrase, or the file is damaged")]
    Decrypt(String),
    /// The keychain failed.
    #[error("the OS keychain failed: {0}")]
    Keychain(String),
    /// File system error.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        detail: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedToken {
    version: u8,
    kdf: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
}

/// The token store of one data directory.
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> TokenStoreError {
    TokenStoreError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn derive_key(
    passphrase: &SecretString,
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, &mut key[..])
        .map_err(|e| e.to_string())?;
    Ok(key)
}

impl TokenStore {
    /// The store for a data directory.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_owned(),
        }
    }

    fn entry(
        contractor: &ContractorId,
        broker_url: &str,
    ) -> Result<keyring::Entry, TokenStoreError> {
        keyring::Entry::new(SERVICE, &format!("{contractor}@{broker_url}"))
            .map_err(|e| TokenStoreError::Keychain(e.to_string()))
    }

    /// The recorded enrollment, if any.
    pub fn enrollment(&self) -> Result<Option<Enrollment>, TokenStoreError> {
        let path = self.dir.join(INFO);
        match std::fs::read_to_string(&path) {
            Ok(t) => toml::from_str(&t).map(Some).map_err(|e| io_err(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Where [`save`](Self::save) will be able to keep a token, found out BEFORE a one-time
    /// enrollment code is redeemed (a code spent on a device that cannot keep its token is
    /// lost): the keychain if it takes, returns and deletes a probe entry (unless `prefer_file`),
    /// else the encrypted file if a passphrase is at hand, else [`TokenStoreError::NeedPassphrase`].
    /// The data directory must also be writable.
    pub fn usable_backend(
        &self,
        prefer_file: bool,
        passphrase: Option<&SecretString>,
    ) -> Result<Backend, TokenStoreError> {
        voxseal_core::store::fsutil::create_private_dir(&self.dir)
            .map_err(|e| io_err(&self.dir, e))?;
        if !prefer_file {
            match Self::probe_keychain() {
                Ok(()) => return Ok(Backend::Keychain),
                Err(e) => tracing::info!("no usable keychain ({e}); using an encrypted file"),
            }
        }
        passphrase
            .map(|_| Backend::EncryptedFile)
            .ok_or(TokenStoreError::NeedPassphrase)
    }

    /// Writes, reads back and deletes a random entry in the OS keychain.
    fn probe_keychain() -> Result<(), TokenStoreError> {
        let mut rnd = [0u8; 12];
        getrandom::getrandom(&mut rnd).expect("OS RNG");
        let value = hex::encode(rnd);
        let kc = |e: keyring::Error| TokenStoreError::Keychain(e.to_string());
        let entry = keyring::Entry::new(SERVICE, &format!("probe-{value}")).map_err(kc)?;
        entry.set_password(&value).map_err(kc)?;
        let read = entry.get_password();
        let _ = entry.delete_credential();
        if read.map_err(kc)? != value {
            return Err(TokenStoreError::Keychain(
                "the keychain returned something else than was stored".into(),
            ));
        }
        Ok(())
    }

    /// Stores the token: in the keychain unless `prefer_file` or the keychain fails, then in the
    /// encrypted file (which needs `passphrase`).
    pub fn save(
        &self,
        contractor: &ContractorId,
        broker_url: &str,
        token: &SecretString,
        prefer_file: bool,
        passphrase: Option<&SecretString>,
    ) -> Result<Backend, TokenStoreError> {
        let mut backend = Backend::EncryptedFile;
        if !prefer_file {
            match Self::entry(contractor, broker_url).and_then(|e| {
                e.set_password(token.expose_secret())
                    .map_err(|e| TokenStoreError::Keychain(e.to_string()))
            }) {
                Ok(()) => backend = Backend::Keychain,
                Err(e) => tracing::info!("no usable keychain ({e}); using an encrypted file"),
            }
        }
        if backend == Backend::EncryptedFile {
            let passphrase = passphrase.ok_or(TokenStoreError::NeedPassphrase)?;
            self.write_file(contractor, broker_url, token, passphrase)?;
        }
        let info = Enrollment {
            contractor: contractor.clone(),
            broker_url: broker_url.to_owned(),
            backend,
            enrolled_at: voxseal_core::time::now_rfc3339(),
        };
        let path = self.dir.join(INFO);
        voxseal_core::store::fsutil::create_private_dir(&self.dir)
            .map_err(|e| io_err(&self.dir, e))?;
        voxseal_core::store::fsutil::write_atomic(
            &path,
            toml::to_string(&info).expect("serializes").as_bytes(),
            true,
        )
        .map_err(|e| io_err(&path, e))?;
        Ok(backend)
    }

    fn aad(contractor: &ContractorId, broker_url: &str) -> Vec<u8> {
        format!("voxseal device token v1|{contractor}|{broker_url}").into_bytes()
    }

    fn write_file(
        &self,
        contractor: &ContractorId,
        broker_url: &str,
        token: &SecretString,
        passphrase: &SecretString,
    ) -> Result<(), TokenStoreError> {
        let path = self.dir.join(FILE);
        let (m, t, p) = (64 * 1024, 3, 1);
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut salt).expect("OS RNG");
        getrandom::getrandom(&mut nonce).expect("OS RNG");
        let key = derive_key(passphrase, &salt, m, t, p).map_err(|e| io_err(&path, e))?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
        let aad = Self::aad(contractor, broker_url);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| io_err(&path, "encryption failed"))?;
        let sealed = SealedToken {
            version: 1,
            kdf: "argon2id".into(),
            m_cost: m,
            t_cost: t,
            p_cost: p,
            salt: b64().encode(salt),
            nonce: b64().encode(nonce),
            ciphertext: b64().encode(ct),
        };
        voxseal_core::store::fsutil::create_private_dir(&self.dir)
            .map_err(|e| io_err(&self.dir, e))?;
        voxseal_core::store::fsutil::write_atomic(
            &path,
            &serde_json::to_vec_pretty(&sealed).expect("serializes"),
            true,
        )
        .map_err(|e| io_err(&path, e))
    }

    /// Loads the token; `passphrase` is asked for only when the encrypted file is in use.
    pub fn load(
        &self,
        passphrase: impl FnOnce() -> Option<SecretString>,
    ) -> Result<(Enrollment, SecretString), TokenStoreError> {
        let info = self.enrollment()?.ok_or(TokenStoreError::NotEnrolled)?;
        let token = match info.backend {
            Backend::Keychain => Self::entry(&info.contractor, &info.broker_url)?
                .get_password()
                .map(SecretString::from)
                .map_err(|e| TokenStoreError::Keychain(e.to_string()))?,
            Backend::EncryptedFile => {
                let path = self.dir.join(FILE);
                let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                let sealed: SealedToken =
                    serde_json::from_slice(&bytes).map_err(|e| io_err(&path, e))?;
                if sealed.version != 1
                    || sealed.kdf != "argon2id"
                    || sealed.m_cost > 1 << 21
                    || sealed.t_cost > 64
                {
                    return Err(io_err(
                        &path,
                        "unsupported token file version or parameters",
                    ));
                }
                let pass = passphrase().ok_or(TokenStoreError::NeedPassphrase)?;
                let dec = |s: &str| b64().decode(s).map_err(|e| io_err(&path, e));
                let (salt, nonce, ct) = (
                    dec(&sealed.salt)?,
                    dec(&sealed.nonce)?,
                    dec(&sealed.ciphertext)?,
                );
                if nonce.len() != 12 {
                    return Err(io_err(&path, "bad nonce"));
                }
                let key = derive_key(&pass, &salt, sealed.m_cost, sealed.t_cost, sealed.p_cost)
                    .map_err(|e| io_err(&path, e))?;
                let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
                let aad = Self::aad(&info.contractor, &info.broker_url);
                let plain = Zeroizing::new(
                    cipher
                        .decrypt(
                            Nonce::from_slice(&nonce),
                            Payload {
                                msg: &ct,
                                aad: &aad,
                            },
                        )
                        .map_err(|_| TokenStoreError::Decrypt(path.display().to_string()))?,
                );
                SecretString::from(
                    String::from_utf8(plain.to_vec())
                        .map_err(|_| TokenStoreError::Decrypt(path.display().to_string()))?,
                )
            }
        };
        Ok((info, token))
    }

    /// Forgets the enrollment (keychain entry, file and record).
    pub fn forget(&self) -> Result<(), TokenStoreError> {
        if let Some(info) = self.enrollment()? {
            if info.backend == Backend::Keychain
                && let Ok(e) = Self::entry(&info.contractor, &info.broker_url)
            {
                let _ = e.delete_credential();
            }
            for f in [FILE, INFO] {
                let p = self.dir.join(f);
                if p.exists() {
                    voxseal_core::store::wipe::wipe_file(&p).map_err(|e| io_err(&p, e))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usable_backend_is_known_before_anything_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(&dir.path().join("data"));
        let pass = SecretString::from("correct horse".to_owned());
        assert!(matches!(
            store.usable_backend(true, None),
            Err(TokenStoreError::NeedPassphrase)
        ));
        assert_eq!(
            store.usable_backend(true, Some(&pass)).unwrap(),
            Backend::EncryptedFile
        );
        // Whatever the keychain here, asking for it never fails when a passphrase is at hand.
        assert!(store.usable_backend(false, Some(&pass)).is_ok());
        assert_eq!(store.enrollment().unwrap(), None, "nothing recorded yet");
    }

    #[test]
    fn encrypted_file_round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        let c: ContractorId = "alice-01".parse().unwrap();
        let token = SecretString::from("vxt_0123456789ab_supersecret".to_owned());
        let pass = SecretString::from("correct horse".to_owned());
        assert_eq!(
            store
                .save(&c, "http://127.0.0.1:8787", &token, true, Some(&pass))
                .unwrap(),
            Backend::EncryptedFile
        );
        let raw = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!raw.contains("supersecret"));
        let (info, got) = store.load(|| Some(pass.clone())).unwrap();
        assert_eq!(info.contractor, c);
        assert_eq!(got.expose_secret(), token.expose_secret());
        let wrong = store
            .load(|| Some(SecretString::from("wrong".to_owned())))
            .unwrap_err();
        assert!(matches!(wrong, TokenStoreError::Decrypt(_)), "{wrong}");
        assert!(matches!(
            store.load(|| None).unwrap_err(),
            TokenStoreError::NeedPassphrase
        ));
        // The record binds the ciphertext: another broker URL does not decrypt it.
        let mut info = store.enrollment().unwrap().unwrap();
        info.broker_url = "http://evil".into();
        std::fs::write(dir.path().join(INFO), toml::to_string(&info).unwrap()).unwrap();
        assert!(matches!(
            store.load(|| Some(pass.clone())).unwrap_err(),
            TokenStoreError::Decrypt(_)
        ));
        store.forget().unwrap();
        assert!(matches!(
            store.load(|| Some(pass)).unwrap_err(),
            TokenStoreError::NotEnrolled
        ));
    }

    /// Windows always has a keychain, the Credential Manager (`scripts/windows.sh test` runs this
    /// under Wine, whose advapi32 implements the same Cred* calls): the token goes there, nothing
    /// of it reaches the data directory, and `forget` removes the credential.
    #[cfg(windows)]
    #[test]
    fn the_windows_credential_manager_keeps_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        let c: ContractorId = "wina-01".parse().unwrap();
        let url = format!("http://127.0.0.1:{}", std::process::id());
        let token = SecretString::from("vxt_0123456789ab_windowssecret".to_owned());
        assert_eq!(
            store.usable_backend(false, None).unwrap(),
            Backend::Keychain
        );
        assert_eq!(
            store.save(&c, &url, &token, false, None).unwrap(),
            Backend::Keychain
        );
        assert!(!dir.path().join(FILE).exists(), "no token file");
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let text = std::fs::read(f.unwrap().path()).unwrap();
            assert!(!String::from_utf8_lossy(&text).contains("windowssecret"));
        }
        let (info, got) = store.load(|| None).unwrap();
        assert_eq!(
            (info.contractor, info.backend),
            (c.clone(), Backend::Keychain)
        );
        assert_eq!(got.expose_secret(), token.expose_secret());
        store.forget().unwrap();
        assert!(matches!(
            TokenStore::entry(&c, &url).unwrap().get_password(),
            Err(keyring::Error::NoEntry)
        ));
    }

    #[test]
    fn without_keychain_or_passphrase_it_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        let c: ContractorId = "alice-01".parse().unwrap();
        let e = store
            .save(&c, "u", &SecretString::from("t".to_owned()), true, None)
            .unwrap_err();
        assert!(e.to_string().contains("VOXSEAL_TOKEN_PASSPHRASE"));
    }
}
