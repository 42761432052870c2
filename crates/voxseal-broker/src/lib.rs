//! `voxseal-broker`: the token-vending service. A contractor's laptop trades a one-time
//! enrollment code for a device token once, then trades the device token for short-lived upload
//! credentials (STS `AssumeRole` with a session policy that allows writing only under the
//! contractor's own prefixes) whenever it needs them.
//!
//! # HTTP API
//! | request | success | errors (`{"error":{"kind","message"}}`) |
//! | --- | --- | --- |
//! | `GET /healthz` | 200 `{"status":"ok"}` | |
//! | `POST /v1/enroll` `{"code":"vxe_…"}` | 200 `{"contractor":"<id>","token":"vxt_…"}` | 401 `invalid_code` (also a code already redeemed: its record is deleted) / `expired_code`, 403 `revoked` |
//! | `POST /v1/sessions`, `Authorization: Bearer vxt_…`, empty body or `{}` | 200 [`SessionCredentials`](voxseal_cloud::credentials::SessionCredentials) JSON | 401 `unauthorized`, 403 `revoked`, 429 `rate_limited` (the contractor's bucket, after the token verified), 502 `upstream` |
//! | `POST /v1/project`, `{"code":"vxe_…"}` (an unused code) or `Authorization: Bearer vxt_…` | 200 `{"config":"<project.toml>","signature":"<minisign>"}`, the lead-signed config of `project` in the broker's config | 401 `invalid_code` / `expired_code` / `unauthorized`, 403 `revoked`, 404 `not_found` (no project configured), 429 `rate_limited` |
//!
//! Any route: 400 `bad_request` (wrong content), 408 `timeout` (body or handling over
//! `request_timeout_secs`), 413 `too_large` (body over `max_body_bytes`), 404 `not_found`,
//! 405 `method_not_allowed`, 429 `rate_limited` (this client address has used up its refusals:
//! answered before the request is read), 500 `internal` (registry or audit log unavailable).
//! Every 429 carries a `Retry-After` header and `error.retry_after_s`. Successful responses carry
//! `Cache-Control: no-store`.
//!
//! # Pieces
//! - [`app`] builds the router from an [`AppState`] (registry path, audit log, rate limits,
//!   [`ClientLimits`], and an [`issuer::Issuer`]); [`serve::serve`] serves it with connection
//!   caps and a header deadline; `main.rs` only reads the [`config::Config`], sets up logging and
//!   calls it.
//! - [`ratelimit`]: per-contractor buckets (verified session requests) and per-address buckets
//!   (refusals).
//! - [`registry`]: the enrollment registry file, shared with the `voxseal enroll` commands.
//! - [`issuer`]: the [`issuer::Issuer`] trait and [`issuer::StsIssuer`] (sessions of at most
//!   900 s; the demo stack's local issuer lives in `voxseal-localstack`).
//! - [`revocation`]: the bucket-policy statement that stops a revoked contractor's sessions at
//!   once (`voxseal enroll revoke --now`).
//! - [`audit`]: every issuance is a line in the broker's hash-chained audit log
//!   ([`voxseal_core::store::audit`]): contractor, source IP, outcome, expiry, STS request id; never a
//!   secret. Every refusal is a line too while its address has refusal budget left; beyond it,
//!   refusals are counted per address and written as one line per address and minute. The log is
//!   rotated at a size cap.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use voxseal_broker::{AppState, Settings, issuer::{StsIssuer, Target}};
//! let target = Target::new("voxseal-dev", "us-east-1",
//!     "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000")?;
//! let role = "arn:aws:iam::123456789012:role/voxseal-contractor";
//! let issuer = StsIssuer::from_environment(role, target, 900, None).await?;
//! let state = AppState::new(Settings {
//!     registry: "registry.toml".into(),
//!     audit_log: "broker-audit.log".into(),
//!     rate_limit: Default::default(),
//!     max_body_bytes: 4096,
//!     project: Some("project.toml".into()),
//! }, Arc::new(issuer));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8787").await?;
//! voxseal_broker::serve::serve(listener, state, Default::default(), std::future::pending()).await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod app;
pub mod audit;
pub mod config;
pub mod error;
pub mod issuer;
mod project;
pub mod ratelimit;
pub mod registry;
pub mod revocation;
pub mod serve;

pub use app::{
    AppState, ClientIp, ClientLimits, EVENT_ENROLL_ACCEPTED, EVENT_ENROLL_REFUSED,
    EVENT_SESSION_ISSUED, EVENT_SESSION_REFUSED, Settings, app,
};
pub use error::AppError;
