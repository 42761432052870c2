//! The enrollment registry: who may get credentials, stored in one TOML file.
//!
//! Each contractor has an entry with its id, when it was added and revoked, its one-time
//! enrollment code and its device token. Secrets are never stored: only their Argon2id hashes (PHC
//! strings), each next to a short random lookup id that is also part of the secret's text:
//!
//! - enrollment code: `vxe_<12 hex lookup id>_<32 base32 characters>` (160 random bits; typed
//!   case-insensitively), one-time, expires (default [`DEFAULT_CODE_TTL`]);
//! - device token: `vxt_<12 hex lookup id>_<43 base64url characters>` (256 random bits).
//!
//! The lookup id finds the entry without trying every hash; the Argon2id verification of the
//! whole string is what authenticates (constant time, in the `argon2` crate).
//!
//! The file is shared by the broker and the `voxseal enroll` commands. [`Registry::load`] takes an
//! exclusive lock on a sidecar file (`<registry>.lock`, never replaced) and holds it until the
//! [`Registry`] is dropped, so a load-modify-[`Registry::save`] sequence never loses another
//! process's change. Saves replace the file atomically (mode 0600), so readers that do not lock
//! ([`RegistrySnapshot::read`], used by the broker on every request) always see a whole file.
//!
//! ```
//! use voxseal_broker::registry::{Registry, DEFAULT_CODE_TTL};
//! let dir = tempfile::tempdir().unwrap();
//! let mut reg = Registry::load(dir.path().join("registry.toml")).unwrap();
//! let code = reg.add("alice-01".parse().unwrap(), DEFAULT_CODE_TTL).unwrap();
//! reg.save().unwrap();
//! assert!(code.expose_secret().starts_with("vxe_")); // shown to the lead once, never stored
//! assert_eq!(reg.list().len(), 1);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use voxseal_core::project::ids::ContractorId;
use voxseal_core::store::fsutil;

/// How long a new enrollment code stays valid unless the caller says otherwise: 7 days.
pub const DEFAULT_CODE_TTL: time::Duration = time::Duration::days(7);

/// How long [`Registry::load`] waits for another process's lock before giving up.
pub const LOCK_TIMEOUT: StdDuration = StdDuration::from_secs(10);

const CODE_PREFIX: &str = "vxe_";
const TOKEN_PREFIX: &str = "vxt_";
const LOOKUP_ID_HEX: usize = 12;
const CODE_SECRET_BYTES: usize = 20; // 32 base32 characters
const TOKEN_SECRET_BYTES: usize = 32; // 43 base64url characters
const FORMAT_VERSION: u32 = 1;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Why the registry could not be read, locked, changed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The file (or its lock file) could not be read or written.
    #[error("enrollment registry {path}: {source}")]
    Io {
        /// The file's path.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Another process held the registry's lock for longer than [`LOCK_TIMEOUT`].
    #[error(
        "enrollment registry {path} is locked by another process (a broker or `voxseal enroll`); try again"
    )]
    Locked {
        /// The registry's path.
        path: String,
    },
    /// The file is not a valid registry.
    #[error("enrollment registry {path} is not valid: {message}")]
    Invalid {
        /// The file's path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `add` was asked for a contractor that is already active (not revoked).
    #[error(
        "contractor {0} is already enrolled or has a pending code; revoke it first to issue a new code"
    )]
    AlreadyActive(ContractorId),
    /// No such contractor.
    #[error("no contractor {0} in the registry")]
    NotFound(ContractorId),
    /// A code lifetime that is zero or negative.
    #[error("an enrollment code's lifetime must be positive")]
    InvalidTtl,
}

/// Why an enrollment code was refused by [`Registry::redeem`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// Malformed, unknown, or the secret part does not verify.
    #[error("the enrollment code is not valid")]
    InvalidCode,
    /// The code verified but is past its expiry.
    #[error("the enrollment code of {0} has expired")]
    ExpiredCode(ContractorId),
    /// The code verified but the contractor is revoked.
    #[error("contractor {0} is revoked")]
    Revoked(ContractorId),
}

/// Why a device token was refused by [`RegistrySnapshot::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Malformed, unknown, or the secret part does not verify.
    #[error("the device token is not valid")]
    Unauthorized,
    /// The token verified but the contractor is revoked.
    #[error("contractor {0} is revoked")]
    Revoked(ContractorId),
}

/// A new enrollment code in clear: returned once by [`Registry::add`], never stored. No
/// `Display`; `Debug` hides the secret.
pub struct EnrollmentCode {
    contractor: ContractorId,
    code: SecretString,
    expires_at: OffsetDateTime,
}

impl EnrollmentCode {
    /// The contractor it enrolls.
    pub fn contractor(&self) -> &ContractorId {
        &self.contractor
    }
    /// The code's text (`vxe_…`), to hand to the contractor once.
    pub fn expose_secret(&self) -> &str {
        self.code.expose_secret()
    }
    /// When it stops working.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

impl fmt::Debug for EnrollmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentCode")
            .field("contractor", &self.contractor)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A new device token in clear: returned once by [`Registry::redeem`], never stored. No
/// `Display`; `Debug` hides the secret.
pub struct DeviceToken {
    contractor: ContractorId,
    token: SecretString,
}

impl DeviceToken {
    /// The contractor it belongs to.
    pub fn contractor(&self) -> &ContractorId {
        &self.contractor
    }
    /// The token's text (`vxt_…`).
    pub fn expose_secret(&self) -> &str {
        self.token.expose_secret()
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceToken")
            .field("contractor", &self.contractor)
            .finish_non_exhaustive()
    }
}

/// Where a contractor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContractorStatus {
    /// Has an unused, unexpired code.
    Pending,
    /// Its code expired unused (revoke and add again to issue a new one).
    CodeExpired,
    /// Enrolled: has a device token.
    Enrolled,
    /// Revoked: its token and code no longer work.
    Revoked,
}

impl fmt::Display for ContractorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::CodeExpired => "code-expired",
            Self::Enrolled => "enrolled",
            Self::Revoked => "revoked",
        })
    }
}

/// One contractor as [`Registry::list`] shows it: no secrets, no hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractorSummary {
    /// The contractor.
    pub id: ContractorId,
    /// Where it stands now.
    pub status: ContractorStatus,
    /// When it was first added.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When its current enrollment code expires (or expired).
    #[serde(with = "time::serde::rfc3339::option")]
    pub code_expires_at: Option<OffsetDateTime>,
    /// When it enrolled (redeemed its code for a device token).
    #[serde(with = "time::serde::rfc3339::option")]
    pub enrolled_at: Option<OffsetDateTime>,
}

// ---------------------------------------------------------------------------------------------
// File format

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    version: u32,
    #[serde(default, rename = "contractor")]
    contractors: Vec<Entry>,
}

impl Default for RegistryFile {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            contractors: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: ContractorId,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<CodeRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<TokenRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRecord {
    /// The lookup id (the 12 hex digits after `vxe_`).
    id: String,
    /// Argon2id PHC string of the whole normalized code.
    hash: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    /// The lookup id (the 12 hex digits after `vxt_`).
    id: String,
    /// Argon2id PHC string of the whole token.
    hash: String,
    #[serde(with = "time::serde::rfc3339")]
    issued_at: OffsetDateTime,
}

impl Entry {
    /// Whether `normalized` (a parsed code) opens this entry's code now: the secret first, so a
    /// wrong code never learns anything about the contractor.
    fn check_code(&self, normalized: &str, now: OffsetDateTime) -> Result<(), RedeemError> {
        let rec = self.code.as_ref().ok_or(RedeemError::InvalidCode)?;
        if !verify_secret(normalized, &rec.hash) {
            return Err(RedeemError::InvalidCode);
        }
        if self.revoked_at.is_some() {
            return Err(RedeemError::Revoked(self.id.clone()));
        }
        if rec.expires_at <= now {
            return Err(RedeemError::ExpiredCode(self.id.clone()));
        }
        Ok(())
    }

    fn summary(&self, now: OffsetDateTime) -> ContractorSummary {
        let status = if self.revoked_at.is_some() {
            ContractorStatus::Revoked
        } else if self.token.is_some() {
            ContractorStatus::Enrolled
        } else if self.code.as_ref().is_some_and(|c| c.expires_at > now) {
            ContractorStatus::Pending
        } else {
            ContractorStatus::CodeExpired
        };
        ContractorSummary {
            id: self.id.clone(),
            status,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            code_expires_at: self.code.as_ref().map(|c| c.expires_at),
            enrolled_at: self.token.as_ref().map(|t| t.issued_at),
        }
    }
}

fn is_lookup_id(s: &str) -> bool {
    s.len() == LOOKUP_ID_HEX
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn is_argon2id_phc(s: &str) -> bool {
    PasswordHash::new(s).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

impl RegistryFile {
    fn parse(path: &Path, text: &str) -> Result<Self, RegistryError> {
        let invalid = |message: String| RegistryError::Invalid {
            path: path.display().to_string(),
            message,
        };
        // toml's messages quote the offending line; the file holds only hashes, never secrets.
        let file: RegistryFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.version != FORMAT_VERSION {
            return Err(invalid(format!(
                "version {} (this broker reads version {FORMAT_VERSION})",
                file.version
            )));
        }
        let mut ids = HashMap::new();
        let mut lookups = HashMap::new();
        for e in &file.contractors {
            if ids.insert(e.id.clone(), ()).is_some() {
                return Err(invalid(format!("contractor {} appears twice", e.id)));
            }
            let records = [
                e.code.as_ref().map(|c| (&c.id, &c.hash, "code")),
                e.token.as_ref().map(|t| (&t.id, &t.hash, "token")),
            ];
            for (id, hash, what) in records.into_iter().flatten() {
                if !is_lookup_id(id) {
                    return Err(invalid(format!(
                        "contractor {}: {what} id is not 12 lowercase hex digits",
                        e.id
                    )));
                }
                if !is_argon2id_phc(hash) {
                    return Err(invalid(format!(
                        "contractor {}: {what} hash is not an Argon2id PHC string",
                        e.id
                    )));
                }
                if lookups.insert((what, id.clone()), ()).is_some() {
                    return Err(invalid(format!("{what} id {id} appears twice")));
                }
            }
        }
        Ok(file)
    }

    fn read(path: &Path) -> Result<Self, RegistryError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(RegistryError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn lookup_id_taken(&self, id: &str) -> bool {
        self.contractors.iter().any(|e| {
            e.code.as_ref().is_some_and(|c| c.id == id)
                || e.token.as_ref().is_some_and(|t| t.id == id)
        })
    }

    fn new_lookup_id(&self) -> String {
        loop {
            let id = hex::encode(random_bytes::<{ LOOKUP_ID_HEX / 2 }>());
            if !self.lookup_id_taken(&id) {
                return id;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the OS random number generator failed");
    b
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Argon2id with the `argon2` crate's defaults (m = 19 MiB, t = 2, p = 1: OWASP's minimum).
fn hash_secret(secret: &str) -> String {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("Argon2id with default parameters cannot fail")
        .to_string()
}

/// Verifies `secret` against a PHC string (parameters from the string; constant-time compare).
pub(crate) fn verify_secret(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

/// A code as typed: its lookup id and its normalized (lowercase, trimmed) text.
pub(crate) fn parse_code(code: &str) -> Option<(String, String)> {
    let norm = code.trim().to_ascii_lowercase();
    let rest = norm.strip_prefix(CODE_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = is_lookup_id(id)
        && secret.len() == CODE_SECRET_BYTES * 8 / 5
        && secret.bytes().all(|c| BASE32.contains(&c));
    ok.then(|| (id.to_owned(), norm.clone()))
}

/// A token as presented: its lookup id, or `None` when it is not of the `vxt_` form.
pub(crate) fn token_lookup_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_at_checked(LOOKUP_ID_HEX)?;
    let secret = secret.strip_prefix('_')?;
    let ok = is_lookup_id(id)
        && secret.len() == (TOKEN_SECRET_BYTES * 8).div_ceil(6)
        && secret
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    ok.then_some(id)
}

// ---------------------------------------------------------------------------------------------
// Locked, writable registry

/// The registry file, loaded under an exclusive lock that is held until this value is dropped.
/// Change it with [`add`](Self::add), [`revoke`](Self::revoke) or [`redeem`](Self::redeem), then
/// [`save`](Self::save).
pub struct Registry {
    path: PathBuf,
    file: RegistryFile,
    _lock: File,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .field("contractors", &self.file.contractors.len())
            .finish_non_exhaustive()
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    fsutil::parent_dir(path).join(name)
}

fn acquire_lock(path: &Path) -> Result<File, RegistryError> {
    let lp = lock_path(path);
    let io = |source| RegistryError::Io {
        path: lp.display().to_string(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts.open(&lp).map_err(io)?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(StdDuration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RegistryError::Locked {
                    path: path.display().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}

impl Registry {
    /// Locks and reads the registry at `path`; a missing file is an empty registry (created by
    /// the first [`save`](Self::save)). Blocks up to [`LOCK_TIMEOUT`] while another process holds
    /// the lock.
    pub fn load(path: impl Into<PathBuf>) -> Result<Registry, RegistryError> {
        let path = path.into();
        let lock = acquire_lock(&path)?;
        let file = RegistryFile::read(&path)?;
        Ok(Registry {
            path,
            file,
            _lock: lock,
        })
    }

    /// The registry file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a contractor (or re-admits a revoked one) and returns its new enrollment code in
    /// clear, valid for `code_ttl`. Only the code's hash is kept: show the code to the lead now.
    ///
    /// Re-admitting a revoked contractor clears its revocation and forgets its old code and token
    /// (they never work again). Adding a contractor that is not revoked is
    /// [`RegistryError::AlreadyActive`].
    pub fn add(
        &mut self,
        id: ContractorId,
        code_ttl: time::Duration,
    ) -> Result<EnrollmentCode, RegistryError> {
        if !code_ttl.is_positive() {
            return Err(RegistryError::InvalidTtl);
        }
        let now = OffsetDateTime::now_utc();
        if self
            .file
            .contractors
            .iter()
            .any(|e| e.id == id && e.revoked_at.is_none())
        {
            return Err(RegistryError::AlreadyActive(id));
        }
        let lookup = self.file.new_lookup_id();
        let code = format!(
            "{CODE_PREFIX}{lookup}_{}",
            base32(&random_bytes::<CODE_SECRET_BYTES>())
        );
        let expires_at = now + code_ttl;
        let record = CodeRecord {
            id: lookup,
            hash: hash_secret(&code),
            expires_at,
        };
        match self.file.contractors.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.revoked_at = None;
                e.token = None;
                e.code = Some(record);
            }
            None => self.file.contractors.push(Entry {
                id: id.clone(),
                created_at: now,
                revoked_at: None,
                code: Some(record),
                token: None,
            }),
        }
        Ok(EnrollmentCode {
            contractor: id,
            code: SecretString::from(code),
            expires_at,
        })
    }

    /// Revokes a contractor: its device token and any pending code stop working at the broker's
    /// next request after [`save`](Self::save). Returns false if it was already revoked (the
    /// first revocation time is kept).
    pub fn revoke(&mut self, id: &ContractorId) -> Result<bool, RegistryError> {
        let e = self
            .file
            .contractors
            .iter_mut()
            .find(|e| &e.id == id)
            .ok_or_else(|| RegistryError::NotFound(id.clone()))?;
        if e.revoked_at.is_some() {
            return Ok(false);
        }
        e.revoked_at = Some(OffsetDateTime::now_utc());
        Ok(true)
    }

    /// Every contractor, in the order they were added; no secrets or hashes.
    pub fn list(&self) -> Vec<ContractorSummary> {
        let now = OffsetDateTime::now_utc();
        self.file
            .contractors
            .iter()
            .map(|e| e.summary(now))
            .collect()
    }

    /// One contractor.
    pub fn get(&self, id: &ContractorId) -> Option<ContractorSummary> {
        let now = OffsetDateTime::now_utc();
        self.file
            .contractors
            .iter()
            .find(|e| &e.id == id)
            .map(|e| e.summary(now))
    }

    /// Trades a one-time enrollment code for a new device token (returned in clear once; only its
    /// hash is kept). The code's record is deleted, so a second try is
    /// [`RedeemError::InvalidCode`]. Call [`save`](Self::save) afterwards.
    ///
    /// The code's secret is verified before anything about its contractor is revealed: a wrong
    /// code is always [`RedeemError::InvalidCode`].
    pub fn redeem(&mut self, code: &str) -> Result<DeviceToken, RedeemError> {
        let now = OffsetDateTime::now_utc();
        let (lookup, normalized) = parse_code(code).ok_or(RedeemError::InvalidCode)?;
        let idx = self
            .file
            .contractors
            .iter()
            .position(|e| e.code.as_ref().is_some_and(|c| c.id == lookup))
            .ok_or(RedeemError::InvalidCode)?;
        let token_lookup = self.file.new_lookup_id();
        let e = &mut self.file.contractors[idx];
        e.check_code(&normalized, now)?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(random_bytes::<TOKEN_SECRET_BYTES>());
        let token = format!("{TOKEN_PREFIX}{token_lookup}_{secret}");
        // Forget the code: an old link then names no one and costs the broker no Argon2 run.
        e.code = None;
        e.token = Some(TokenRecord {
            id: token_lookup,
            hash: hash_secret(&token),
            issued_at: now,
        });
        Ok(DeviceToken {
            contractor: e.id.clone(),
            token: SecretString::from(token),
        })
    }

    /// Writes the registry atomically (temp file, fsync, rename) with mode 0600.
    pub fn save(&self) -> Result<(), RegistryError> {
        let text = toml::to_string(&self.file).map_err(|e| RegistryError::Invalid {
            path: self.path.display().to_string(),
            message: format!("cannot serialize: {e}"),
        })?;
        let header = "# Voxseal enrollment registry: managed by `voxseal enroll` and voxseal-broker.\n\
                      # Holds Argon2id hashes only, never codes or tokens. Edit with the CLI.\n\n";
        fsutil::write_atomic(&self.path, format!("{header}{text}").as_bytes(), true).map_err(
            |source| RegistryError::Io {
                path: self.path.display().to_string(),
                source,
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Read-only snapshot (the broker's request path)

/// A read-only copy of the registry, read without the lock (saves are atomic renames, so a
/// reader always sees a whole file). The broker keeps one and re-reads it when the file changes.
#[derive(Debug, Clone, Default)]
pub struct RegistrySnapshot {
    file: RegistryFile,
    by_token: HashMap<String, usize>,
    by_code: HashMap<String, usize>,
}

/// What the broker needs to know about a token's entry before verifying the token.
#[derive(Debug, Clone)]
pub(crate) struct TokenEntry<'a> {
    pub contractor: &'a ContractorId,
    pub token_hash: &'a str,
    pub revoked: bool,
}

impl RegistrySnapshot {
    /// Reads the registry at `path` (a missing file is an empty registry).
    pub fn read(path: &Path) -> Result<Self, RegistryError> {
        let file = RegistryFile::read(path)?;
        let mut by_token = HashMap::new();
        let mut by_code = HashMap::new();
        for (i, e) in file.contractors.iter().enumerate() {
            if let Some(t) = &e.token {
                by_token.insert(t.id.clone(), i);
            }
            if let Some(c) = &e.code {
                by_code.insert(c.id.clone(), i);
            }
        }
        Ok(Self {
            file,
            by_token,
            by_code,
        })
    }

    /// Every contractor; no secrets or hashes.
    pub fn list(&self) -> Vec<ContractorSummary> {
        let now = OffsetDateTime::now_utc();
        self.file
            .contractors
            .iter()
            .map(|e| e.summary(now))
            .collect()
    }

    /// Verifies a device token (Argon2id: tens of milliseconds) and returns its contractor.
    pub fn authenticate(&self, token: &str) -> Result<ContractorId, AuthError> {
        let entry = token_lookup_id(token)
            .and_then(|id| self.token_entry(id))
            .ok_or(AuthError::Unauthorized)?;
        if !verify_secret(token, entry.token_hash) {
            return Err(AuthError::Unauthorized);
        }
        if entry.revoked {
            return Err(AuthError::Revoked(entry.contractor.clone()));
        }
        Ok(entry.contractor.clone())
    }

    pub(crate) fn token_entry(&self, lookup: &str) -> Option<TokenEntry<'_>> {
        let e = &self.file.contractors[*self.by_token.get(lookup)?];
        Some(TokenEntry {
            contractor: &e.id,
            token_hash: &e.token.as_ref().expect("indexed by its token").hash,
            revoked: e.revoked_at.is_some(),
        })
    }

    /// Checks an enrollment code without using it up (Argon2id: tens of milliseconds): the
    /// contractor it was issued to, when it is valid, unused, unexpired and not revoked.
    pub fn check_code(&self, code: &str) -> Result<ContractorId, RedeemError> {
        let (lookup, normalized) = parse_code(code).ok_or(RedeemError::InvalidCode)?;
        let e =
            &self.file.contractors[*self.by_code.get(&lookup).ok_or(RedeemError::InvalidCode)?];
        e.check_code(&normalized, OffsetDateTime::now_utc())?;
        Ok(e.id.clone())
    }

    /// The contractor whose current code has this lookup id.
    pub(crate) fn code_contractor(&self, lookup: &str) -> Option<&ContractorId> {
        self.by_code
            .get(lookup)
            .map(|&i| &self.file.contractors[i].id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ContractorId {
        s.parse().unwrap()
    }

    fn temp_registry() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("registry.toml");
        (dir, p)
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 section 10, lowercased, without padding.
        for (input, want) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(input.as_bytes()), want);
        }
    }

    #[test]
    fn add_redeem_authenticate_round_trip_and_no_secret_on_disk() {
        let (_d, p) = temp_registry();
        let mut reg = Registry::load(&p).unwrap();
        let code = reg.add(id("alice-01"), DEFAULT_CODE_TTL).unwrap();
        let text = code.expose_secret().to_owned();
        assert!(parse_code(&text).is_some(), "{text}");
        assert_eq!(text.len(), 4 + 12 + 1 + 32);
        // Typed in upper case with stray whitespace, it still works.
        let token = reg.redeem(&format!("  {}\n", text.to_uppercase())).unwrap();
        assert!(
            token_lookup_id(token.expose_secret()).is_some(),
            "{}",
            token.expose_secret()
        );
        reg.save().unwrap();
        drop(reg);

        let on_disk = std::fs::read_to_string(&p).unwrap();
        // `<prefix>_<lookup>_<secret>`: the secret itself may hold `_` (URL-safe base64).
        let secret_part = |s: &str| s.splitn(3, '_').nth(2).unwrap().to_owned();
        assert!(!on_disk.contains(&secret_part(&text)) && !on_disk.contains(token.expose_secret()));
        assert!(!on_disk.contains(&secret_part(token.expose_secret())));
        assert!(on_disk.contains("$argon2id$"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }

        let snap = RegistrySnapshot::read(&p).unwrap();
        assert_eq!(
            snap.authenticate(token.expose_secret()).unwrap(),
            id("alice-01")
        );
        let mut wrong = token.expose_secret().to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(snap.authenticate(&wrong), Err(AuthError::Unauthorized));
        assert_eq!(
            snap.authenticate("vxt_nonsense"),
            Err(AuthError::Unauthorized)
        );
        assert_eq!(snap.list()[0].status, ContractorStatus::Enrolled);
    }

    #[test]
    fn codes_are_one_time_and_expire() {
        let (_d, p) = temp_registry();
        let mut reg = Registry::load(&p).unwrap();
        let code = reg.add(id("alice-01"), DEFAULT_CODE_TTL).unwrap();
        reg.redeem(code.expose_secret()).unwrap();
        assert_eq!(
            reg.redeem(code.expose_secret()).unwrap_err(),
            RedeemError::InvalidCode
        );

        let short = reg
            .add(id("bob-02"), time::Duration::milliseconds(1))
            .unwrap();
        std::thread::sleep(StdDuration::from_millis(5));
        assert_eq!(
            reg.redeem(short.expose_secret()).unwrap_err(),
            RedeemError::ExpiredCode(id("bob-02"))
        );
        assert_eq!(
            reg.get(&id("bob-02")).unwrap().status,
            ContractorStatus::CodeExpired
        );

        // A wrong secret with a real lookup id reveals nothing about the contractor.
        let pending = reg.add(id("carol-03"), DEFAULT_CODE_TTL).unwrap();
        let (lookup, _) = parse_code(pending.expose_secret()).unwrap();
        let forged = format!("vxe_{lookup}_{}", "a".repeat(32));
        assert_eq!(reg.redeem(&forged).unwrap_err(), RedeemError::InvalidCode);
        reg.revoke(&id("carol-03")).unwrap();
        assert_eq!(reg.redeem(&forged).unwrap_err(), RedeemError::InvalidCode);
        assert_eq!(
            reg.redeem(pending.expose_secret()).unwrap_err(),
            RedeemError::Revoked(id("carol-03"))
        );
        assert_eq!(
            reg.add(id("x-y"), time::Duration::ZERO)
                .unwrap_err()
                .to_string(),
            RegistryError::InvalidTtl.to_string()
        );
    }

    /// Issue 12 finding 11: a redeemed code is forgotten (its hash and lookup id leave the file and
    /// the broker's index), so an old link costs the broker nothing and names no one.
    #[test]
    fn a_redeemed_code_leaves_the_registry() {
        let (_d, p) = temp_registry();
        let mut reg = Registry::load(&p).unwrap();
        let code = reg.add(id("alice-01"), DEFAULT_CODE_TTL).unwrap();
        reg.redeem(code.expose_secret()).unwrap();
        reg.save().unwrap();
        drop(reg);
        let text = std::fs::read_to_string(&p).unwrap();
        let (lookup, _) = parse_code(code.expose_secret()).unwrap();
        assert_eq!(text.matches("$argon2id$").count(), 1, "{text}");
        assert!(!text.contains(&lookup), "{text}");
        let snap = RegistrySnapshot::read(&p).unwrap();
        assert_eq!(snap.code_contractor(&lookup), None);
        assert_eq!(snap.list()[0].status, ContractorStatus::Enrolled);
    }

    #[test]
    fn add_revoke_readd() {
        let (_d, p) = temp_registry();
        let mut reg = Registry::load(&p).unwrap();
        let first = reg.add(id("alice-01"), DEFAULT_CODE_TTL).unwrap();
        assert!(matches!(
            reg.add(id("alice-01"), DEFAULT_CODE_TTL),
            Err(RegistryError::AlreadyActive(_))
        ));
        let old_token = reg.redeem(first.expose_secret()).unwrap();
        assert!(matches!(
            reg.add(id("alice-01"), DEFAULT_CODE_TTL),
            Err(RegistryError::AlreadyActive(_))
        ));
        assert!(reg.revoke(&id("alice-01")).unwrap());
        assert!(
            !reg.revoke(&id("alice-01")).unwrap(),
            "second revoke is a no-op"
        );
        assert!(matches!(
            reg.revoke(&id("nobody")),
            Err(RegistryError::NotFound(_))
        ));
        let summary = reg.get(&id("alice-01")).unwrap();
        assert_eq!(summary.status, ContractorStatus::Revoked);
        let revoked_at = summary.revoked_at.unwrap();
        assert!(reg.revoke(&id("alice-01")).is_ok());
        assert_eq!(
            reg.get(&id("alice-01")).unwrap().revoked_at,
            Some(revoked_at)
        );

        let second = reg.add(id("alice-01"), DEFAULT_CODE_TTL).unwrap();
        assert_ne!(second.expose_secret(), first.expose_secret());
        assert_eq!(
            reg.get(&id("alice-01")).unwrap().status,
            ContractorStatus::Pending
        );
        reg.save().unwrap();
        drop(reg);
        let snap = RegistrySnapshot::read(&p).unwrap();
        assert_eq!(
            snap.authenticate(old_token.expose_secret()),
            Err(AuthError::Unauthorized),
            "old token is gone"
        );
        assert_eq!(snap.list().len(), 1);
    }

    #[test]
    fn the_lock_serializes_writers() {
        let (_d, p) = temp_registry();
        let reg = Registry::load(&p).unwrap();
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            let started = Instant::now();
            let mut other = Registry::load(&p2).unwrap();
            other.add(id("bob-02"), DEFAULT_CODE_TTL).unwrap();
            other.save().unwrap();
            started.elapsed()
        });
        std::thread::sleep(StdDuration::from_millis(200));
        let mut reg = reg;
        reg.add(id("alice-01"), DEFAULT_CODE_TTL).unwrap();
        reg.save().unwrap();
        drop(reg);
        assert!(
            t.join().unwrap() >= StdDuration::from_millis(150),
            "the second writer waited"
        );
        let ids: Vec<_> = Registry::load(&p)
            .unwrap()
            .list()
            .into_iter()
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(ids, ["alice-01", "bob-02"], "neither change was lost");
    }

    /// Issue 15 §6: redeemed codes leave the registry, so the unreleased format that kept them
    /// marked `used_at` is not read (it was a second path through every code check).
    #[test]
    fn a_code_marked_used_is_not_read() {
        let (_d, p) = temp_registry();
        let pending = "version = 1\n[[contractor]]\nid = \"abc\"\ncreated_at = \"2026-01-01T00:00:00Z\"\n\
            [contractor.code]\nid = \"0123456789ab\"\nhash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGg\"\nexpires_at = \"2026-01-02T00:00:00Z\"\n";
        std::fs::write(&p, pending).unwrap();
        Registry::load(&p).unwrap();
        std::fs::write(&p, format!("{pending}used_at = \"2026-01-01T01:00:00Z\"\n")).unwrap();
        assert!(matches!(
            Registry::load(&p),
            Err(RegistryError::Invalid { .. })
        ));
    }

    #[test]
    fn refuses_damaged_files() {
        let (_d, p) = temp_registry();
        for bad in [
            "version = 2\n",
            "version = 1\n[[contractor]]\nid = \"../x\"\ncreated_at = \"2026-01-01T00:00:00Z\"\n",
            "version = 1\n[[contractor]]\nid = \"abc\"\ncreated_at = \"2026-01-01T00:00:00Z\"\n[contractor.token]\nid = \"0123456789ab\"\nhash = \"plaintext\"\nissued_at = \"2026-01-01T00:00:00Z\"\n",
            "version = 1\nextra = true\n",
        ] {
            std::fs::write(&p, bad).unwrap();
            assert!(
                matches!(Registry::load(&p), Err(RegistryError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_format() {
        let good = format!("vxt_0123456789ab_{}", "A".repeat(43));
        assert_eq!(token_lookup_id(&good), Some("0123456789ab"));
        for bad in [
            format!("vxt_0123456789AB_{}", "A".repeat(43)),
            format!("vxt_0123456789ab_{}", "A".repeat(42)),
            format!("vxt_0123456789ab-{}", "A".repeat(43)),
            format!("vxe_0123456789ab_{}", "A".repeat(43)),
            format!("vxt_0123456789ab_{}=", "A".repeat(42)),
            "vxt_".into(),
            String::new(),
        ] {
            assert_eq!(token_lookup_id(&bad), None, "{bad}");
        }
    }
}
