//! Grants for the embedded local stack: short-lived keys whose scope (bucket, prefixes, actions,
//! SSE-KMS key, expiry) the local S3 endpoint enforces, standing in for what IAM and the session
//! policy enforce on AWS.
//!
//! The local issuer (in the broker) mints a key pair and session token into a [`GrantStore`];
//! the local S3 endpoint looks every request's access key up in the same store. Both run in one
//! process (`voxseal dev-stack`, the desktop app's local mode, tests), so the store is shared
//! memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use voxseal_core::project::ids::ContractorId;

use voxseal_cloud::credentials::SessionCredentials;
use voxseal_cloud::policy::contractor_prefixes;

/// What a key may do.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Everything (the dev stack's admin key, for setup, reads and the AWS CLI).
    Admin,
    /// A contractor session: write-only to its own prefixes, with the project key.
    Contractor {
        /// The contractor.
        contractor: ContractorId,
        /// The bucket.
        bucket: String,
        /// Allowed key prefixes.
        prefixes: Vec<String>,
        /// The KMS key uploads must name.
        kms_key_arn: String,
    },
}

/// One key pair and what it may do.
#[derive(Clone)]
pub struct Grant {
    /// The secret access key.
    pub secret: SecretString,
    /// The session token requests must carry (None for the admin key).
    pub session_token: Option<SecretString>,
    /// Expiry (None: never).
    pub expires_at: Option<OffsetDateTime>,
    /// What it may do.
    pub scope: Scope,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Shared store of grants, keyed by access key id.
#[derive(Debug, Clone, Default)]
pub struct GrantStore {
    inner: Arc<RwLock<HashMap<String, Grant>>>,
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator failed");
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl GrantStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a permanent admin key.
    pub fn add_admin(&self, access_key: &str, secret: &str) {
        self.inner.write().expect("grant store lock").insert(
            access_key.to_owned(),
            Grant {
                secret: SecretString::from(secret.to_owned()),
                session_token: None,
                expires_at: None,
                scope: Scope::Admin,
            },
        );
    }

    /// Mints contractor credentials valid for `lifetime`, like STS AssumeRole would.
    pub fn mint(
        &self,
        contractor: &ContractorId,
        bucket: &str,
        region: &str,
        kms_key_arn: &str,
        lifetime: time::Duration,
    ) -> SessionCredentials {
        let access_key = format!("ASIA{}", random_string(UPPER_DIGITS, 16));
        let secret = random_string(SECRET_CHARS, 40);
        let token = random_string(SECRET_CHARS, 64);
        let expiration = OffsetDateTime::now_utc() + lifetime;
        let prefixes: Vec<String> = contractor_prefixes(contractor).to_vec();
        let grant = Grant {
            secret: SecretString::from(secret.clone()),
            session_token: Some(SecretString::from(token.clone())),
            expires_at: Some(expiration),
            scope: Scope::Contractor {
                contractor: contractor.clone(),
                bucket: bucket.to_owned(),
                prefixes: prefixes.clone(),
                kms_key_arn: kms_key_arn.to_owned(),
            },
        };
        let mut map = self.inner.write().expect("grant store lock");
        // Forget grants that expired more than an hour ago.
        let cutoff = OffsetDateTime::now_utc() - time::Duration::hours(1);
        map.retain(|_, g| g.expires_at.is_none_or(|e| e > cutoff));
        map.insert(access_key.clone(), grant);
        SessionCredentials {
            version: 1,
            access_key_id: access_key,
            secret_access_key: SecretString::from(secret),
            session_token: SecretString::from(token),
            expiration,
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            prefixes,
            kms_key_arn: kms_key_arn.to_owned(),
        }
    }

    /// Looks a key up.
    pub fn get(&self, access_key: &str) -> Option<Grant> {
        self.inner
            .read()
            .expect("grant store lock")
            .get(access_key)
            .cloned()
    }

    /// Removes every grant of a contractor (revocation in the dev stack).
    pub fn revoke(&self, contractor: &ContractorId) {
        self.inner
            .write()
            .expect("grant store lock")
            .retain(|_, g| match &g.scope {
                Scope::Contractor { contractor: c, .. } => c != contractor,
                Scope::Admin => true,
            });
    }
}

impl Grant {
    /// True when `token` is this grant's session token (constant time).
    pub fn token_matches(&self, token: Option<&str>) -> bool {
        match (&self.session_token, token) {
            (None, None) => true,
            (Some(want), Some(got)) => {
                let (a, b) = (want.expose_secret().as_bytes(), got.as_bytes());
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
            }
            _ => false,
        }
    }
}
