//! Shared pieces of Voxseal's fuzz targets: input formats, scratch directories and the broker
//! fixture. See docs/fuzzing.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod encode;

/// A scratch directory for one fuzzing process. Under `TMPDIR` (scripts/fuzz.sh points it at a
/// per-run directory in /dev/shm and removes it afterwards: libFuzzer exits without running
/// destructors, so the directory outlives the process).
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("voxseal-fuzz-")
        .tempdir()
        .expect("a scratch directory")
}

/// Writes `bytes` to `path` (truncating; same inode).
pub fn put(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write a scratch file");
}

// ---------------------------------------------------------------------------------------------
// broker_request

use argon2::password_hash::{PasswordHasher, SaltString};
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Argon2id with the smallest parameters (8 KiB, 1 pass): the broker verifies with the
/// parameters stored in the hash, so the fixture's hashes cost microseconds instead of ~19 MiB
/// and tens of milliseconds each.
fn cheap_hash(secret: &str) -> String {
    let params = argon2::Params::new(8, 1, 1, None).expect("valid parameters");
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("dm94c2VhbGZ1enpzYWx0").expect("valid salt");
    a.hash_password(secret.as_bytes(), &salt)
        .expect("hashing works")
        .to_string()
}

fn registry_text() -> String {
    use encode::*;
    let created = "created_at = \"2026-01-01T00:00:00Z\"";
    format!(
        "version = 1\n\
         [[contractor]]\nid = \"alice-01\"\n{created}\n\
         [contractor.code]\nid = \"0123456789ab\"\nhash = \"{}\"\nexpires_at = \"2099-01-01T00:00:00Z\"\n\
         [[contractor]]\nid = \"bob-02\"\n{created}\n\
         [contractor.token]\nid = \"a1b2c3d4e5f6\"\nhash = \"{}\"\nissued_at = \"2026-01-02T00:00:00Z\"\n\
         [[contractor]]\nid = \"carol-03\"\n{created}\nrevoked_at = \"2026-02-01T00:00:00Z\"\n\
         [contractor.token]\nid = \"0a0b0c0d0e0f\"\nhash = \"{}\"\nissued_at = \"2026-01-02T00:00:00Z\"\n\
         [[contractor]]\nid = \"dave-04\"\n{created}\n\
         [contractor.token]\nid = \"111111111111\"\nhash = \"{}\"\nissued_at = \"2026-01-03T00:00:00Z\"\n\
         [[contractor]]\nid = \"erin-05\"\n{created}\n\
         [contractor.code]\nid = \"222222222222\"\nhash = \"{}\"\nexpires_at = \"2026-01-04T00:00:00Z\"\n",
        cheap_hash(BROKER_CODE),
        cheap_hash(BROKER_TOKEN),
        cheap_hash(BROKER_TOKEN_REVOKED),
        cheap_hash(BROKER_CODE_USED),
        cheap_hash(BROKER_CODE_EXPIRED),
    )
}

/// The broker's router with a local issuer, a registry of five contractors in every state
/// (pending code, enrolled, revoked, enrolled with its code spent, expired code) and an audit
/// log, driven with `oneshot` on a current-thread tokio runtime.
pub struct Broker {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    registry: PathBuf,
    registry_tmp: PathBuf,
    registry_text: String,
    audit: PathBuf,
}

/// What a request got.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

/// The largest body the fixture's broker accepts.
pub const BROKER_MAX_BODY: usize = 4096;

impl Broker {
    pub fn new() -> Self {
        let dir = scratch_dir();
        let registry = dir.path().join("registry.toml");
        let audit = dir.path().join("broker-audit.log");
        let target = voxseal_broker::issuer::Target::new("voxseal-fuzz", "us-east-1", KMS_KEY)
            .expect("valid target");
        let issuer = voxseal_localstack::issuer::LocalIssuer::new(
            voxseal_localstack::grants::GrantStore::new(),
            target,
            1, // grants expire at once, so the store stays small
        )
        .expect("valid issuer");
        let state = voxseal_broker::AppState::with_limits(
            voxseal_broker::Settings {
                registry: registry.clone(),
                audit_log: audit.clone(),
                // Few successes per contractor: each successful enrollment hashes its new
                // token with the real Argon2id parameters (19 MiB, ~0.2 s under ASan).
                rate_limit: voxseal_broker::ratelimit::RateLimit {
                    burst: 3,
                    refill_secs: 30.0,
                },
                max_body_bytes: BROKER_MAX_BODY,
                project: None,
            },
            // Every input comes from the same (absent) client address: with the default refusal
            // budget, everything after the first 20 refusals would be an unread 429.
            voxseal_broker::ClientLimits {
                refusals: voxseal_broker::ratelimit::RateLimit {
                    burst: u32::MAX,
                    refill_secs: 1.0,
                },
                ..Default::default()
            },
            Arc::new(issuer),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let b = Self {
            registry_tmp: dir.path().join("registry.toml.new"),
            _dir: dir,
            rt,
            app: voxseal_broker::app(state),
            registry,
            registry_text: registry_text(),
            audit,
        };
        b.reset();
        b
    }

    /// Puts the registry back as it was (a successful enrollment changes it) and starts a new
    /// audit log when the old one passes 64 KiB.
    pub fn reset(&self) {
        put(&self.registry_tmp, self.registry_text.as_bytes());
        std::fs::rename(&self.registry_tmp, &self.registry).expect("replace the registry");
        // `audit_intact` re-verifies the whole log after every request: keep it short.
        if std::fs::metadata(&self.audit).is_ok_and(|m| m.len() > 64 << 10) {
            let _ = std::fs::remove_file(&self.audit);
        }
    }

    pub fn call(&self, req: Request<Body>) -> Reply {
        self.rt.block_on(async {
            let resp = self
                .app
                .clone()
                .oneshot(req)
                .await
                .expect("the router is infallible");
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("a response body").to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
    }

    /// The audit log must still verify after every request.
    pub fn audit_intact(&self) -> bool {
        voxseal_core::store::audit::verify(&self.audit)
            .expect("read the audit log")
            .is_intact()
    }
}

impl Default for Broker {
    fn default() -> Self {
        Self::new()
    }
}

/// The error kinds the broker documents, with their statuses.
pub fn documented_error(kind: &str) -> Option<StatusCode> {
    Some(match kind {
        "bad_request" => StatusCode::BAD_REQUEST,
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unauthorized" | "invalid_code" | "expired_code" => StatusCode::UNAUTHORIZED,
        "revoked" => StatusCode::FORBIDDEN,
        "timeout" => StatusCode::REQUEST_TIMEOUT,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "upstream" => StatusCode::BAD_GATEWAY,
        "not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => return None,
    })
}

/// `Content-Type` of a reply.
pub fn content_type(r: &Reply) -> Option<&str> {
    r.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}
