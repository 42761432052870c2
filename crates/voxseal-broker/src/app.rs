//! The HTTP service: state, routes and handlers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Semaphore;
use voxseal_core::project::ids::ContractorId;

use crate::audit::BrokerAudit;
use crate::config::Config;
use crate::error::AppError;
use crate::issuer::{IssueError, Issued, Issuer};
use crate::ratelimit::{RateLimit, RateLimiter};
use crate::registry::{self, RedeemError, Registry, RegistryError, RegistrySnapshot};

/// Audit event: an enrollment code was traded for a device token.
pub const EVENT_ENROLL_ACCEPTED: &str = "broker.enroll.accepted";
/// Audit event: an enrollment request was refused.
pub const EVENT_ENROLL_REFUSED: &str = "broker.enroll.refused";
/// Audit event: the signed project config was handed to a code or token holder.
pub const EVENT_PROJECT_SERVED: &str = "broker.project.served";
/// Audit event: session credentials were issued.
pub const EVENT_SESSION_ISSUED: &str = "broker.session.issued";
/// Audit event: a session request was refused.
pub const EVENT_SESSION_REFUSED: &str = "broker.session.refused";

/// Verified tokens remembered at most (the cache is emptied when full).
const CACHE_CAPACITY: usize = 4096;
/// Argon2 runs at once (each uses ~19 MiB and a core for tens of milliseconds).
const ARGON2_SLOTS: usize = 2;
/// The longest enrollment code accepted in a body, in characters.
const MAX_CODE_LEN: usize = 128;

/// Limits on what an unauthenticated client can make the broker do (see the operator guide).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientLimits {
    /// Refused requests allowed per client address (token bucket); an address whose bucket is
    /// empty is answered 429 before anything is read, verified or audited.
    pub refusals: RateLimit,
    /// Reverse proxies whose `X-Forwarded-For` names the client (none by default: the TCP peer
    /// is the client).
    pub trusted_proxies: Vec<IpAddr>,
    /// Time allowed for one request's body and handling. Default 30 s.
    pub request_timeout: Duration,
    /// The audit log is rotated when it reaches this size. Default 64 MiB.
    pub audit_max_bytes: u64,
    /// Rotated audit files kept (`<log>.1` … `<log>.<n>`). Default 4.
    pub audit_keep: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            refusals: RateLimit::client_default(),
            trusted_proxies: Vec::new(),
            request_timeout: Duration::from_secs(30),
            audit_max_bytes: 64 << 20,
            audit_keep: 4,
        }
    }
}

/// What [`AppState::new`] needs besides the issuer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The enrollment registry file.
    pub registry: PathBuf,
    /// The broker's audit log.
    pub audit_log: PathBuf,
    /// Per-contractor rate limit (verified session requests).
    pub rate_limit: RateLimit,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// The lead-signed project config served to enrolling apps (absent: `/v1/project` is 404).
    pub project: Option<PathBuf>,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            registry: c.registry.clone(),
            audit_log: c.audit_log.clone(),
            rate_limit: c.rate_limit,
            max_body_bytes: c.max_body_bytes,
            project: c.project.clone(),
        }
    }
}

/// The broker's shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("registry", &self.inner.registry_path)
            .field("issuer", &self.inner.issuer.name())
            .finish_non_exhaustive()
    }
}

struct Shared {
    registry_path: PathBuf,
    watch: Mutex<Watch>,
    issuer: Arc<dyn Issuer>,
    audit: Arc<BrokerAudit>,
    limiter: RateLimiter,
    clients: RateLimiter<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
    request_timeout: Duration,
    cache: Mutex<HashMap<[u8; 32], CachedAuth>>,
    cache_key: [u8; 32],
    argon2: Semaphore,
    max_body_bytes: usize,
    project: Option<PathBuf>,
}

/// The registry file's identity and the snapshot read from it.
#[derive(Default)]
struct Watch {
    fingerprint: Option<Option<Fingerprint>>,
    snapshot: Arc<RegistrySnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

fn fingerprint(path: &Path) -> std::io::Result<Option<Fingerprint>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(Fingerprint {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            },
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A token that verified: valid while its entry still has this hash.
#[derive(Clone)]
struct CachedAuth {
    contractor: ContractorId,
    token_hash: String,
}

impl AppState {
    /// State for a broker with this issuer and the default [`ClientLimits`]. The registry is read
    /// on the first request and re-read whenever the file changes.
    pub fn new(settings: Settings, issuer: Arc<dyn Issuer>) -> Self {
        Self::with_limits(settings, ClientLimits::default(), issuer)
    }

    /// Like [`new`](Self::new) with these client limits.
    pub fn with_limits(settings: Settings, limits: ClientLimits, issuer: Arc<dyn Issuer>) -> Self {
        let mut cache_key = [0u8; 32];
        getrandom::getrandom(&mut cache_key).expect("the OS random number generator failed");
        Self {
            inner: Arc::new(Shared {
                registry_path: settings.registry,
                watch: Mutex::new(Watch::default()),
                issuer,
                audit: Arc::new(BrokerAudit::new(
                    settings.audit_log,
                    limits.audit_max_bytes,
                    limits.audit_keep,
                )),
                limiter: RateLimiter::new(settings.rate_limit),
                clients: RateLimiter::new(limits.refusals),
                trusted_proxies: limits
                    .trusted_proxies
                    .iter()
                    .map(|a| canonical(*a))
                    .collect(),
                request_timeout: limits.request_timeout,
                cache: Mutex::new(HashMap::new()),
                cache_key,
                argon2: Semaphore::new(ARGON2_SLOTS),
                max_body_bytes: settings.max_body_bytes,
                project: settings.project,
            }),
        }
    }

    /// The signed project config this broker serves, if any.
    pub(crate) fn project_path(&self) -> Option<&Path> {
        self.inner.project.as_deref()
    }

    /// The issuer's name (`sts` or `local`).
    pub fn issuer_name(&self) -> &'static str {
        self.inner.issuer.name()
    }

    /// The current registry, re-read if the file changed since the last request (which also
    /// empties the verification cache).
    pub(crate) fn snapshot(&self) -> Result<Arc<RegistrySnapshot>, AppError> {
        let path = &self.inner.registry_path;
        let internal = |e: &dyn std::fmt::Display| {
            tracing::error!(registry = %path.display(), error = %e, "enrollment registry unavailable");
            AppError::Internal
        };
        let fp = fingerprint(path).map_err(|e| internal(&e))?;
        let mut w = self.inner.watch.lock().unwrap_or_else(|e| e.into_inner());
        if w.fingerprint.as_ref() == Some(&fp) {
            return Ok(w.snapshot.clone());
        }
        let snap = Arc::new(RegistrySnapshot::read(path).map_err(|e| internal(&e))?);
        w.fingerprint = Some(fp);
        w.snapshot = snap.clone();
        drop(w);
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        tracing::info!(registry = %path.display(), contractors = snap.list().len(), "enrollment registry (re)loaded");
        Ok(snap)
    }

    fn cache_key(&self, token: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.inner.cache_key)
            .expect("HMAC takes any key size");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Writes the refusals counted since the last call (one audit line per address; see
    /// [`crate::audit`]). [`crate::serve::serve`] calls it every minute and at shutdown.
    pub async fn flush_refusals(&self) {
        let log = self.inner.audit.clone();
        match tokio::task::spawn_blocking(move || log.flush_limited()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "audit log append failed"),
            Err(e) => tracing::error!(error = %e, "audit log task failed"),
        }
    }

    /// True when `ip` is one of the configured trusted proxies.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.inner.trusted_proxies.contains(&canonical(ip))
    }

    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the rightmost
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.is_trusted_proxy(peer) {
            return client;
        }
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for part in text.split(',').rev() {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) if self.is_trusted_proxy(ip) => client = ip,
                    Ok(ip) => return ip,
                    Err(_) => return client,
                }
            }
        }
        client
    }

    /// Charges a refusal to the client's address: within its budget it gets its own audit line,
    /// beyond it only a count (the budget, not the number of requests in flight, bounds the lines).
    async fn refused(&self, event: &'static str, who: &Subject, kind: &str) {
        let key = client_key(who.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        if self.inner.clients.check(&key).is_ok() {
            let _ = self.audit(event, who.details(kind)).await;
        } else {
            self.inner.audit.count_limited(key);
        }
    }

    pub(crate) async fn audit(&self, event: &'static str, details: Value) -> Result<(), ()> {
        let log = self.inner.audit.clone();
        match tokio::task::spawn_blocking(move || log.append(event, details)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, event, "audit log append failed");
                Err(())
            }
            Err(e) => {
                tracing::error!(error = %e, event, "audit log task failed");
                Err(())
            }
        }
    }

    /// Runs Argon2 work on the blocking pool, at most [`ARGON2_SLOTS`] at a time.
    pub(crate) async fn argon2<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .inner
            .argon2
            .acquire()
            .await
            .map_err(|_| AppError::Internal)?;
        tokio::task::spawn_blocking(f).await.map_err(|e| {
            tracing::error!(error = %e, "verification task failed");
            AppError::Internal
        })
    }

    pub(crate) fn rate_limit(&self, who: &ContractorId) -> Result<(), AppError> {
        self.inner.limiter.check(who).map_err(retry_after)
    }
}

/// The client's IP address: as resolved by the broker's guard (the TCP peer from axum's
/// `ConnectInfo`, or a trusted proxy's `X-Forwarded-For`); absent when the router is served
/// without `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// An IPv4-mapped IPv6 address as IPv4; anything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key of an address's refusal bucket: the IPv4 address, or the IPv6 /64 (one host usually
/// holds a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn retry_after(wait: Duration) -> AppError {
    AppError::RateLimited {
        retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Runs first on every request: resolves the client's address, answers 429 at once when that
/// address has used up its refusals, and bounds the request's time. Refusals of the two API
/// routes are charged where they are audited ([`AppState::refused`]); other 4xx answers (404,
/// 405) here.
async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = peer.map(|p| st.client_address(p, req.headers()));
    req.extensions_mut().insert(ClientIp(ip));
    let key = client_key(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    if let Err(wait) = st.inner.clients.peek(&key) {
        st.inner.audit.count_limited(key);
        return retry_after(wait).into_response();
    }
    let event = match req.uri().path() {
        "/v1/enroll" => Some(EVENT_ENROLL_REFUSED),
        "/v1/sessions" => Some(EVENT_SESSION_REFUSED),
        _ => None,
    };
    match tokio::time::timeout(st.inner.request_timeout, next.run(req)).await {
        Ok(resp) => {
            if event.is_none() && resp.status().is_client_error() {
                st.inner.clients.charge(&key);
            }
            resp
        }
        Err(_) => {
            tracing::info!(client = ?ip, "request timed out");
            let who = Subject {
                ip,
                ..Subject::default()
            };
            match event {
                Some(event) => st.refused(event, &who, AppError::Timeout.kind()).await,
                None => st.inner.clients.charge(&key),
            }
            AppError::Timeout.into_response()
        }
    }
}

/// The broker's HTTP API (see the crate docs). Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the audit log gets client addresses.
pub fn app(state: AppState) -> Router {
    let limit = state.inner.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sessions", post(sessions))
        .route("/v1/project", post(crate::project::serve))
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().on_response(
                tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
            ),
        )
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Who a request is about, for the audit line.
#[derive(Default)]
struct Subject {
    ip: Option<IpAddr>,
    /// Named by the presented code or token's lookup id, not yet verified.
    claimed: Option<ContractorId>,
    /// Proven by a verified code or token.
    verified: Option<ContractorId>,
    request_id: Option<String>,
}

impl Subject {
    /// The contractor for the server log: verified, else claimed, else empty.
    fn name(&self) -> &str {
        self.verified
            .as_ref()
            .or(self.claimed.as_ref())
            .map(ContractorId::as_str)
            .unwrap_or_default()
    }

    fn details(&self, outcome: &str) -> Value {
        let mut d = json!({
            "outcome": outcome,
            "source_ip": self.ip.map(|i| i.to_string()),
        });
        if let Some(c) = &self.verified {
            d["contractor"] = json!(c);
        } else if let Some(c) = &self.claimed {
            d["claimed_contractor"] = json!(c);
        }
        if let Some(r) = &self.request_id {
            d["sts_request_id"] = json!(r);
        }
        d
    }
}

pub(crate) fn body_error(r: BytesRejection) -> AppError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge
    } else {
        AppError::BadRequest("could not read the request body")
    }
}

pub(crate) fn ok_json(value: Value) -> Response {
    let mut resp = (StatusCode::OK, axum::Json(value)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollRequest {
    code: String,
}

async fn enroll(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut who = Subject {
        ip,
        ..Subject::default()
    };
    match enroll_inner(&st, &mut who, &headers, body).await {
        Ok(token) => {
            let mut details = who.details("accepted");
            details["issuer"] = json!(st.issuer_name());
            if st.audit(EVENT_ENROLL_ACCEPTED, details).await.is_err() {
                // The registry already holds the token's hash; without an audit line the
                // contractor simply enrolls again with a new code from the lead.
                return AppError::Internal.into_response();
            }
            tracing::info!(contractor = %token.contractor(), "enrolled");
            ok_json(json!({"contractor": token.contractor(), "token": token.expose_secret()}))
        }
        Err(e) => {
            st.refused(EVENT_ENROLL_REFUSED, &who, e.kind()).await;
            tracing::info!(
                kind = e.kind(),
                contractor = who.name(),
                "enrollment refused"
            );
            e.into_response()
        }
    }
}

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")),
    }
}

async fn enroll_inner(
    st: &AppState,
    who: &mut Subject,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<registry::DeviceToken, AppError> {
    let body = body.map_err(body_error)?;
    if !is_json(headers) {
        return Err(AppError::BadRequest(
            "expected Content-Type: application/json",
        ));
    }
    let req: EnrollRequest = serde_json::from_slice(&body)
        .map_err(|_| AppError::BadRequest("expected a JSON object {\"code\": \"vxe_...\"}"))?;
    if req.code.len() > MAX_CODE_LEN {
        return Err(AppError::InvalidCode);
    }
    let (lookup, _) = registry::parse_code(&req.code).ok_or(AppError::InvalidCode)?;
    let snap = st.snapshot()?;
    let claimed = snap
        .code_contractor(&lookup)
        .ok_or(AppError::InvalidCode)?
        .clone();
    who.claimed = Some(claimed.clone());
    let path = st.inner.registry_path.clone();
    let code = req.code;
    let outcome = st
        .argon2(
            move || -> Result<Result<registry::DeviceToken, RedeemError>, RegistryError> {
                let mut reg = Registry::load(path)?;
                let redeemed = reg.redeem(&code);
                if redeemed.is_ok() {
                    reg.save()?;
                }
                Ok(redeemed)
            },
        )
        .await?
        .map_err(|e| {
            tracing::error!(error = %e, "enrollment registry unavailable");
            AppError::Internal
        })?;
    match outcome {
        Ok(token) => {
            who.verified = Some(token.contractor().clone());
            Ok(token)
        }
        Err(RedeemError::ExpiredCode(c)) => {
            who.verified = Some(c);
            Err(AppError::ExpiredCode)
        }
        Err(RedeemError::Revoked(c)) => {
            who.verified = Some(c);
            Err(AppError::Revoked)
        }
        Err(_) => Err(AppError::InvalidCode),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyObject {}

async fn sessions(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut who = Subject {
        ip,
        ..Subject::default()
    };
    match sessions_inner(&st, &mut who, &headers, body).await {
        Ok(issued) => {
            let c = &issued.credentials;
            let mut details = who.details("issued");
            details["issuer"] = json!(st.issuer_name());
            details["access_key_id"] = json!(c.access_key_id);
            details["expires_at"] = json!(voxseal_core::time::format_rfc3339(c.expiration));
            if st.audit(EVENT_SESSION_ISSUED, details).await.is_err() {
                // Fail closed: credentials nobody can account for are not handed out.
                return AppError::Internal.into_response();
            }
            tracing::info!(
                contractor = who.verified.as_ref().map(ContractorId::as_str).unwrap_or_default(),
                access_key_id = %c.access_key_id,
                expires_at = %voxseal_core::time::format_rfc3339(c.expiration),
                sts_request_id = issued.request_id.as_deref().unwrap_or_default(),
                "session issued"
            );
            ok_json(
                serde_json::to_value(&issued.credentials).expect("credentials always serialize"),
            )
        }
        Err(e) => {
            st.refused(EVENT_SESSION_REFUSED, &who, e.kind()).await;
            tracing::info!(kind = e.kind(), contractor = who.name(), "session refused");
            e.into_response()
        }
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn sessions_inner(
    st: &AppState,
    who: &mut Subject,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Issued, AppError> {
    let body = body.map_err(body_error)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        if !is_json(headers) {
            return Err(AppError::BadRequest(
                "expected an empty body or Content-Type: application/json",
            ));
        }
        serde_json::from_slice::<EmptyObject>(&body)
            .map_err(|_| AppError::BadRequest("expected an empty body or the JSON object {}"))?;
    }
    let token = bearer(headers).ok_or(AppError::Unauthorized)?;
    let lookup = registry::token_lookup_id(token).ok_or(AppError::Unauthorized)?;
    let snap = st.snapshot()?;
    let entry = snap.token_entry(lookup).ok_or(AppError::Unauthorized)?;
    let claimed = entry.contractor.clone();
    who.claimed = Some(claimed.clone());

    let key = st.cache_key(token);
    let cached = st
        .inner
        .cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let verified = match cached {
        Some(c) => c.contractor == claimed && c.token_hash == entry.token_hash,
        None => {
            let (token, hash) = (token.to_owned(), entry.token_hash.to_owned());
            let ok = st
                .argon2(move || registry::verify_secret(&token, &hash))
                .await?;
            if ok {
                let mut cache = st.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(
                    key,
                    CachedAuth {
                        contractor: claimed.clone(),
                        token_hash: entry.token_hash.to_owned(),
                    },
                );
            }
            ok
        }
    };
    if !verified {
        return Err(AppError::Unauthorized);
    }
    who.verified = Some(claimed.clone());
    // Only after verification: nobody but the token's holder can spend its contractor's bucket.
    st.rate_limit(&claimed)?;
    if entry.revoked {
        return Err(AppError::Revoked);
    }
    match st.inner.issuer.issue(&claimed).await {
        Ok(issued) => {
            who.request_id.clone_from(&issued.request_id);
            Ok(issued)
        }
        Err(IssueError::Upstream { detail, request_id }) => {
            tracing::error!(
                contractor = %claimed,
                sts_request_id = request_id.as_deref().unwrap_or_default(),
                error = %detail,
                "credential issuance failed"
            );
            who.request_id = request_id;
            Err(AppError::Upstream)
        }
        Err(e) => {
            tracing::error!(contractor = %claimed, error = %e, "credential issuance failed");
            Err(AppError::Internal)
        }
    }
}
