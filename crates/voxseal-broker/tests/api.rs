//! The broker's HTTP API through `app(state).oneshot(request)` with the local issuer: every route
//! and error kind, revocation, one-time codes, rate limiting, body limits, and that no secret ever
//! reaches the audit log, an error body or the server log.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use voxseal_broker::issuer::{IssueError, IssueFuture, Issuer, Target};
use voxseal_broker::ratelimit::RateLimit;
use voxseal_broker::registry::{DEFAULT_CODE_TTL, Registry};
use voxseal_broker::{AppState, Settings, app};
use voxseal_cloud::credentials::SessionCredentials;
use voxseal_core::project::ids::ContractorId;
use voxseal_core::store::audit::{AuditEntry, AuditLog};
use voxseal_localstack::grants::{GrantStore, Scope};
use voxseal_localstack::issuer::LocalIssuer;

const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

// ---------------------------------------------------------------------------------------------
// Server log capture: every test's tracing output goes to one buffer that the secrets test reads.

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn server_log() -> &'static LogBuffer {
    static LOG: OnceLock<LogBuffer> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = LogBuffer::default();
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(move || writer.clone())
            .init();
        buf
    })
}

// ---------------------------------------------------------------------------------------------

struct Harness {
    _dir: tempfile::TempDir,
    registry: PathBuf,
    audit: PathBuf,
    state: AppState,
    store: GrantStore,
    /// Every body of every response, for the secrets check.
    bodies: Mutex<Vec<String>>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn kind(&self) -> &str {
        self.body["error"]["kind"].as_str().unwrap_or("<none>")
    }
    #[track_caller]
    fn expect_error(&self, status: u16, kind: &str) {
        assert_eq!(
            (self.status.as_u16(), self.kind()),
            (status, kind),
            "{}",
            self.body
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        assert_eq!(self.headers[header::CONTENT_TYPE], "application/json");
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(RateLimit::default(), 4096, 900)
    }

    fn with(rate_limit: RateLimit, max_body_bytes: usize, lifetime_secs: u32) -> Self {
        let store = GrantStore::new();
        let issuer = LocalIssuer::new(store.clone(), target(), lifetime_secs).unwrap();
        Self::with_issuer(rate_limit, max_body_bytes, Arc::new(issuer), store)
    }

    fn with_issuer(
        rate_limit: RateLimit,
        max_body_bytes: usize,
        issuer: Arc<dyn Issuer>,
        store: GrantStore,
    ) -> Self {
        server_log();
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry.toml");
        let audit = dir.path().join("broker-audit.log");
        let state = AppState::new(
            Settings {
                registry: registry.clone(),
                audit_log: audit.clone(),
                rate_limit,
                max_body_bytes,
                // Served by /v1/project when the test writes it (see `project_config_...`).
                project: Some(dir.path().join("project.toml")),
            },
            issuer,
        );
        Self {
            _dir: dir,
            registry,
            audit,
            state,
            store,
            bodies: Mutex::new(Vec::new()),
        }
    }

    /// `voxseal enroll add` as the CLI does it: returns the code's text.
    fn add(&self, id: &str) -> String {
        self.add_with_ttl(id, DEFAULT_CODE_TTL)
    }

    fn add_with_ttl(&self, id: &str, ttl: time::Duration) -> String {
        let mut reg = Registry::load(&self.registry).unwrap();
        let code = reg.add(cid(id), ttl).unwrap();
        reg.save().unwrap();
        code.expose_secret().to_owned()
    }

    /// `voxseal enroll revoke`.
    fn revoke(&self, id: &str) {
        let mut reg = Registry::load(&self.registry).unwrap();
        assert!(reg.revoke(&cid(id)).unwrap());
        reg.save().unwrap();
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        self.send_from([127, 0, 0, 1], req).await
    }

    /// Sends `req` as if from `ip` (the address the broker's per-address limits key on).
    async fn send_from(&self, ip: [u8; 4], req: Request<Body>) -> Reply {
        let mut req = req;
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40123))));
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn enroll(&self, code: &str) -> Reply {
        self.send(post_json(
            "/v1/enroll",
            &json!({ "code": code }).to_string(),
        ))
        .await
    }

    async fn session(&self, token: &str) -> Reply {
        self.send(
            Request::post("/v1/sessions")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Adds and enrolls a contractor; returns its device token.
    async fn enrolled(&self, id: &str) -> String {
        let r = self.enroll(&self.add(id)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["contractor"], id);
        r.body["token"].as_str().unwrap().to_owned()
    }

    fn audit(&self) -> Vec<AuditEntry> {
        AuditLog::new(&self.audit).entries().unwrap()
    }
}

fn target() -> Target {
    Target::new("voxseal-test", "us-east-1", KEY).unwrap()
}

fn cid(s: &str) -> ContractorId {
    s.parse().unwrap()
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn healthz() {
    let h = Harness::new();
    let r = h
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn enroll_then_session_returns_scoped_short_lived_credentials() {
    let h = Harness::new();
    let token = h.enrolled("alice-01").await;
    assert!(token.starts_with("vxt_"), "{token}");

    let before = time::OffsetDateTime::now_utc();
    let r = h.session(&token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    // The client deserializes exactly this type (deny_unknown_fields).
    let creds: SessionCredentials = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(creds.version, 1);
    assert_eq!(creds.bucket, "voxseal-test");
    assert_eq!(creds.region, "us-east-1");
    assert_eq!(creds.kms_key_arn, KEY);
    assert_eq!(
        creds.prefixes,
        ["raw/alice-01/", "features/alice-01/", "manifests/alice-01/"]
    );
    let lifetime = creds.expiration - before;
    assert!(
        lifetime > time::Duration::seconds(895) && lifetime <= time::Duration::seconds(901),
        "{lifetime}"
    );
    // The local issuer's grant is what the embedded S3 endpoint will enforce.
    let grant = h.store.get(&creds.access_key_id).expect("grant minted");
    match grant.scope {
        Scope::Contractor {
            contractor,
            prefixes,
            ..
        } => {
            assert_eq!(contractor, cid("alice-01"));
            assert_eq!(prefixes, creds.prefixes);
        }
        Scope::Admin => panic!("contractor grant expected"),
    }

    // An empty JSON object is accepted too, and a second request is served (from the cache).
    let again = h
        .send(
            Request::post("/v1/sessions")
                .header(header::AUTHORIZATION, format!("bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_ne!(
        again.body["AccessKeyId"], r.body["AccessKeyId"],
        "fresh keys per session"
    );

    let audit = h.audit();
    let events: Vec<&str> = audit.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "broker.enroll.accepted",
            "broker.session.issued",
            "broker.session.issued"
        ]
    );
    let issued = &audit[1].details;
    assert_eq!(issued["contractor"], "alice-01");
    assert_eq!(issued["source_ip"], "127.0.0.1");
    assert_eq!(issued["outcome"], "issued");
    assert_eq!(issued["issuer"], "local");
    assert_eq!(issued["access_key_id"], creds.access_key_id);
    assert_eq!(
        issued["expires_at"],
        voxseal_core::time::format_rfc3339(creds.expiration)
    );
    assert!(
        voxseal_core::store::audit::verify(&h.audit)
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn a_code_works_once() {
    let h = Harness::new();
    let code = h.add("alice-01");
    let first = h.enroll(&code).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // The redeemed code is forgotten: a second try is an unknown code that names no one.
    h.enroll(&code).await.expect_error(401, "invalid_code");
    let audit = h.audit();
    assert_eq!(audit[1].event, "broker.enroll.refused");
    assert_eq!(audit[1].details["outcome"], "invalid_code");
    assert!(audit[1].details.get("contractor").is_none());
    assert!(audit[1].details.get("claimed_contractor").is_none());
}

/// Issue 12 finding 11: an old enrollment link replayed about once a second (here: ten times at
/// once) used to drain its contractor's bucket, which `/v1/sessions` shared, so the contractor
/// got 429 on every credential request.
#[tokio::test]
async fn replaying_a_used_enrollment_code_does_not_lock_the_contractor_out() {
    let h = Harness::with(
        RateLimit {
            burst: 3,
            refill_secs: 60.0,
        },
        4096,
        900,
    );
    let code = h.add("alice-01");
    let r = h.enroll(&code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    for _ in 0..10 {
        let replay = h
            .send_from(
                [127, 0, 0, 9],
                post_json("/v1/enroll", &json!({ "code": code }).to_string()),
            )
            .await;
        assert!(
            matches!(replay.status.as_u16(), 401 | 429),
            "{}",
            replay.body
        );
    }
    for _ in 0..3 {
        let r = h.session(&token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

#[tokio::test]
async fn concurrent_enrollments_with_one_code_yield_one_token() {
    let h = Arc::new(Harness::new());
    let code = h.add("alice-01");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (h, code) = (h.clone(), code.clone());
            tokio::spawn(async move { h.enroll(&code).await })
        })
        .collect();
    let mut kinds = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        kinds.push(if r.status == StatusCode::OK {
            "ok".to_owned()
        } else {
            r.kind().to_owned()
        });
    }
    kinds.sort();
    assert_eq!(
        kinds,
        ["invalid_code", "invalid_code", "invalid_code", "ok"]
    );
}

#[tokio::test]
async fn enroll_refusals() {
    let h = Harness::new();
    let code = h.add("alice-01");
    // Unknown (well-formed), malformed, and a real lookup id with a wrong secret.
    h.enroll(&format!("vxe_000000000000_{}", "a".repeat(32)))
        .await
        .expect_error(401, "invalid_code");
    h.enroll("hello").await.expect_error(401, "invalid_code");
    h.enroll(&"vxe_".repeat(100))
        .await
        .expect_error(401, "invalid_code");
    let (head, _) = code.rsplit_once('_').unwrap();
    h.enroll(&format!("{head}_{}", "b".repeat(32)))
        .await
        .expect_error(401, "invalid_code");

    let expiring = h.add_with_ttl("bob-02", time::Duration::milliseconds(1));
    tokio::time::sleep(Duration::from_millis(10)).await;
    h.enroll(&expiring).await.expect_error(401, "expired_code");

    let to_revoke = h.add("carol-03");
    h.revoke("carol-03");
    h.enroll(&to_revoke).await.expect_error(403, "revoked");

    let audit = h.audit();
    let outcomes: Vec<&str> = audit
        .iter()
        .map(|e| e.details["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "invalid_code",
            "invalid_code",
            "invalid_code",
            "invalid_code",
            "expired_code",
            "revoked"
        ]
    );
    assert!(audit.iter().all(|e| e.event == "broker.enroll.refused"));
    // Only a verified code names the contractor; a wrong secret names only the claim.
    assert_eq!(audit[3].details["claimed_contractor"], "alice-01");
    assert!(audit[3].details.get("contractor").is_none());
    assert_eq!(audit[4].details["contractor"], "bob-02");
    assert!(audit[0].details.get("claimed_contractor").is_none());
    // The original code still works after all that.
    assert_eq!(h.enroll(&code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn session_refusals() {
    let h = Harness::new();
    let token = h.enrolled("alice-01").await;
    let missing = h
        .send(Request::post("/v1/sessions").body(Body::empty()).unwrap())
        .await;
    missing.expect_error(401, "unauthorized");
    assert_eq!(missing.headers[header::WWW_AUTHENTICATE], "Bearer");
    let basic = h
        .send(
            Request::post("/v1/sessions")
                .header(header::AUTHORIZATION, "Basic YTpi")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    basic.expect_error(401, "unauthorized");
    h.session("vxt_garbage")
        .await
        .expect_error(401, "unauthorized");
    h.session(&format!("vxt_000000000000_{}", "A".repeat(43)))
        .await
        .expect_error(401, "unauthorized");
    // A real lookup id with a wrong secret.
    let forged = format!("{}{}", &token[..17], "A".repeat(43));
    h.session(&forged).await.expect_error(401, "unauthorized");
    // An enrollment code is not a device token.
    let code = h.add("bob-02");
    h.session(&code).await.expect_error(401, "unauthorized");
    // Still fine with the real token (the forged one was not cached as valid).
    assert_eq!(h.session(&token).await.status, StatusCode::OK);
    let audit = h.audit();
    let refused: Vec<&AuditEntry> = audit
        .iter()
        .filter(|e| e.event == "broker.session.refused")
        .collect();
    assert_eq!(refused.len(), 6);
    assert!(
        refused
            .iter()
            .all(|e| e.details["outcome"] == "unauthorized")
    );
    assert_eq!(refused[4].details["claimed_contractor"], "alice-01");
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request() {
    let h = Harness::new();
    let token = h.enrolled("alice-01").await;
    assert_eq!(h.session(&token).await.status, StatusCode::OK);
    assert_eq!(h.session(&token).await.status, StatusCode::OK); // now cached
    h.revoke("alice-01");
    h.session(&token).await.expect_error(403, "revoked");
    let last = h.audit().pop().unwrap();
    assert_eq!(last.event, "broker.session.refused");
    assert_eq!(last.details["outcome"], "revoked");
    assert_eq!(last.details["contractor"], "alice-01");

    // Re-admitted with a new code: the old token stays dead, the new one works.
    let code = h.add("alice-01");
    h.session(&token).await.expect_error(401, "unauthorized");
    let r = h.enroll(&code).await;
    assert_eq!(r.status, StatusCode::OK);
    let new_token = r.body["token"].as_str().unwrap();
    assert_ne!(new_token, token);
    assert_eq!(h.session(new_token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn sessions_are_rate_limited_per_contractor() {
    let h = Harness::with(
        RateLimit {
            burst: 3,
            refill_secs: 6.0,
        },
        4096,
        900,
    );
    let alice = h.enrolled("alice-01").await; // enrollment does not take from alice's bucket
    let bob = h.enrolled("bob-02").await;
    for _ in 0..3 {
        assert_eq!(h.session(&alice).await.status, StatusCode::OK);
    }
    let r = h.session(&alice).await;
    r.expect_error(429, "rate_limited");
    let retry: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry), "{retry}");
    assert_eq!(r.body["error"]["retry_after_s"], retry);
    assert_eq!(
        h.session(&bob).await.status,
        StatusCode::OK,
        "buckets are per contractor"
    );
    let last = h.audit().pop().unwrap();
    assert_eq!(last.details["contractor"], "bob-02");
    let limited = h
        .audit()
        .into_iter()
        .find(|e| e.details["outcome"] == "rate_limited")
        .unwrap();
    assert_eq!(limited.details["contractor"], "alice-01");
}

#[tokio::test]
async fn the_bucket_refills() {
    let h = Harness::with(
        RateLimit {
            burst: 1,
            refill_secs: 0.3,
        },
        4096,
        900,
    );
    let token = h.enrolled("alice-01").await;
    assert_eq!(h.session(&token).await.status, StatusCode::OK);
    h.session(&token).await.expect_error(429, "rate_limited");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(h.session(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_and_malformed_bodies() {
    let h = Harness::with(RateLimit::default(), 256, 900);
    let token = h.enrolled("alice-01").await;
    let big = json!({ "code": "x".repeat(1000) }).to_string();
    h.send(post_json("/v1/enroll", &big))
        .await
        .expect_error(413, "too_large");
    let big_session = Request::post("/v1/sessions")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!("{{\"pad\":\"{}\"}}", "x".repeat(1000))))
        .unwrap();
    h.send(big_session).await.expect_error(413, "too_large");
    // A streamed body without Content-Length is cut off at the limit too.
    let stream = futures_body("{\"code\":\"", 2000);
    h.send(
        Request::post("/v1/enroll")
            .header(header::CONTENT_TYPE, "application/json")
            .body(stream)
            .unwrap(),
    )
    .await
    .expect_error(413, "too_large");

    for (ctype, body) in [
        ("application/json", "not json"),
        ("application/json", "{\"code\": 5}"),
        ("application/json", "{\"code\": \"vxe_x\", \"extra\": 1}"),
        ("application/json", "[]"),
        ("text/plain", "{\"code\": \"vxe_x\"}"),
    ] {
        let req = Request::post("/v1/enroll")
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(body))
            .unwrap();
        h.send(req).await.expect_error(400, "bad_request");
    }
    for body in ["{\"a\":1}", "null", "x"] {
        let req = Request::post("/v1/sessions")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        h.send(req).await.expect_error(400, "bad_request");
    }
    let audit = h.audit();
    assert!(audit.iter().any(|e| e.details["outcome"] == "too_large"));
    assert!(audit.iter().any(|e| e.details["outcome"] == "bad_request"));
}

/// A body that arrives in chunks with no length.
fn futures_body(prefix: &'static str, total: usize) -> Body {
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = std::iter::once(Ok(prefix.into()))
        .chain((0..total / 100).map(|_| Ok(axum::body::Bytes::from(vec![b'a'; 100]))))
        .collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let h = Harness::new();
    h.send(Request::get("/v1/nope").body(Body::empty()).unwrap())
        .await
        .expect_error(404, "not_found");
    h.send(Request::get("/v1/sessions").body(Body::empty()).unwrap())
        .await
        .expect_error(405, "method_not_allowed");
    h.send(
        Request::builder()
            .method(Method::DELETE)
            .uri("/v1/enroll")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .expect_error(405, "method_not_allowed");
}

/// STS failing: 502 `upstream`, with the detail only in the server log.
struct FailingIssuer;

impl Issuer for FailingIssuer {
    fn name(&self) -> &'static str {
        "failing"
    }
    fn issue<'a>(&'a self, _contractor: &'a ContractorId) -> IssueFuture<'a> {
        Box::pin(async {
            Err(IssueError::Upstream {
                detail: "AccessDenied: upstream-detail-marker not authorized to assume role".into(),
                request_id: Some("req-1234".into()),
            })
        })
    }
}

#[tokio::test]
async fn upstream_failures_are_502_without_details() {
    let h = Harness::with_issuer(
        RateLimit::default(),
        4096,
        Arc::new(FailingIssuer),
        GrantStore::new(),
    );
    let token = h.enrolled("alice-01").await;
    let r = h.session(&token).await;
    r.expect_error(502, "upstream");
    assert!(!r.body.to_string().contains("upstream-detail-marker"));
    let last = h.audit().pop().unwrap();
    assert_eq!(last.details["outcome"], "upstream");
    assert_eq!(last.details["sts_request_id"], "req-1234");
    assert_eq!(last.details["contractor"], "alice-01");
}

#[tokio::test]
async fn an_unwritable_audit_log_withholds_credentials() {
    let h = Harness::new();
    let token = h.enrolled("alice-01").await;
    std::fs::remove_file(&h.audit).unwrap();
    std::fs::create_dir(&h.audit).unwrap(); // appends now fail
    h.session(&token).await.expect_error(500, "internal");
}

#[tokio::test]
async fn a_damaged_registry_fails_closed() {
    let h = Harness::new();
    let token = h.enrolled("alice-01").await;
    std::fs::write(&h.registry, "this is not toml [").unwrap();
    h.session(&token).await.expect_error(500, "internal");
}

#[tokio::test]
async fn verification_is_cached_and_the_cache_follows_the_registry() {
    let h = Harness::with(
        RateLimit {
            burst: 100,
            refill_secs: 1.0,
        },
        4096,
        900,
    );
    let token = h.enrolled("alice-01").await;
    let t0 = Instant::now();
    assert_eq!(h.session(&token).await.status, StatusCode::OK);
    let first = t0.elapsed();
    let t1 = Instant::now();
    for _ in 0..5 {
        assert_eq!(h.session(&token).await.status, StatusCode::OK);
    }
    let cached = t1.elapsed() / 5;
    eprintln!("first session {first:?}, cached {cached:?}");
    // Adding someone else reloads the registry (and empties the cache); the token still works.
    h.add("bob-02");
    assert_eq!(h.session(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn no_secret_reaches_the_audit_log_error_bodies_or_the_server_log() {
    let h = Harness::with(
        RateLimit {
            burst: 4,
            refill_secs: 60.0,
        },
        512,
        900,
    );
    let mut secrets: Vec<String> = Vec::new();
    // Codes: used, reused, expired, revoked, wrong.
    let code = h.add("alice-01");
    secrets.push(code.clone());
    let r = h.enroll(&code).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    secrets.push(token.clone());
    h.enroll(&code).await.expect_error(401, "invalid_code");
    let expired = h.add_with_ttl("bob-02", time::Duration::milliseconds(1));
    secrets.push(expired.clone());
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.enroll(&expired).await.expect_error(401, "expired_code");
    let revoked = h.add("carol-03");
    secrets.push(revoked.clone());
    h.revoke("carol-03");
    h.enroll(&revoked).await.expect_error(403, "revoked");
    let (head, _) = code.rsplit_once('_').unwrap();
    let wrong = format!("{head}_{}", "q".repeat(32));
    secrets.push(wrong.clone());
    h.enroll(&wrong).await.expect_error(401, "invalid_code");
    // Tokens: good (credentials), wrong, rate limited; an oversized body holding the token.
    for _ in 0..4 {
        let r = h.session(&token).await;
        if r.status == StatusCode::OK {
            secrets.push(r.body["SecretAccessKey"].as_str().unwrap().to_owned());
            secrets.push(r.body["SessionToken"].as_str().unwrap().to_owned());
        }
    }
    h.session(&token).await.expect_error(429, "rate_limited");
    let forged = format!("{}{}", &token[..17], "Z".repeat(43));
    secrets.push(forged.clone());
    h.session(&forged).await.expect_error(401, "unauthorized");
    let dave = h.enrolled("dave-04").await;
    secrets.push(dave.clone());
    let forged_dave = format!("{}{}", &dave[..17], "Y".repeat(43));
    secrets.push(forged_dave.clone());
    h.session(&forged_dave)
        .await
        .expect_error(401, "unauthorized");
    let big = json!({ "code": code, "pad": "p".repeat(600) }).to_string();
    h.send(post_json("/v1/enroll", &big))
        .await
        .expect_error(413, "too_large");
    h.send(post_json(
        "/v1/enroll",
        &format!("{{\"code\": {code:?}, \"x\": 1}}"),
    ))
    .await
    .expect_error(400, "bad_request");
    h.send(post_json(
        "/v1/enroll",
        &format!("{{\"code\": [{code:?}]}}"),
    ))
    .await
    .expect_error(400, "bad_request");

    // Each secret and its random part (after the last '_', for codes and tokens).
    let mut needles = Vec::new();
    for s in &secrets {
        needles.push(s.clone());
        if let Some((_, tail)) = s.rsplit_once('_')
            && tail.len() >= 20
        {
            needles.push(tail.to_owned());
        }
        needles.push(s.to_uppercase());
    }
    let audit_text = std::fs::read_to_string(&h.audit).unwrap();
    let registry_text = std::fs::read_to_string(&h.registry).unwrap();
    let bodies = h.bodies.lock().unwrap().clone();
    let error_bodies: Vec<&String> = bodies.iter().filter(|b| b.contains("\"error\"")).collect();
    assert!(error_bodies.len() >= 9, "{}", error_bodies.len());
    let log = String::from_utf8(server_log().0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("session issued"), "the server log is captured");
    for n in &needles {
        assert!(!audit_text.contains(n.as_str()), "secret in the audit log");
        assert!(
            !registry_text.contains(n.as_str()),
            "secret in the registry"
        );
        assert!(!log.contains(n.as_str()), "secret in the server log");
        for b in &error_bodies {
            assert!(!b.contains(n.as_str()), "secret in an error body: {b}");
        }
    }
    assert!(
        voxseal_core::store::audit::verify(&h.audit)
            .unwrap()
            .is_intact()
    );
}

/// `POST /v1/project`: the signed config, for an unused code or a device token only; nothing
/// else, and never more than the files hold.
#[tokio::test]
async fn project_config_for_an_unused_code_or_a_token_only() {
    let h = Harness::new();
    let project = |req: Request<Body>| h.send(req);
    let by_code = |code: &str| post_json("/v1/project", &json!({ "code": code }).to_string());
    let code = h.add("alice-01");
    // No config written yet: the broker has nothing to serve.
    project(by_code(&code)).await.expect_error(500, "internal");
    let dir = h.registry.parent().unwrap();
    std::fs::write(dir.join("project.toml"), "[project]\nname = \"acme\"\n").unwrap();
    std::fs::write(
        dir.join("project.toml.sig"),
        "untrusted comment: sig\nRW...\n",
    )
    .unwrap();
    let r = project(by_code(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["config"], "[project]\nname = \"acme\"\n");
    assert!(
        r.body["signature"]
            .as_str()
            .unwrap()
            .starts_with("untrusted comment")
    );
    // The code is still unused: it enrolls afterwards, and then no longer opens the config.
    let token = h.enroll(&code).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    project(by_code(&code))
        .await
        .expect_error(401, "invalid_code");
    project(by_code("vxe_000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
        .await
        .expect_error(401, "invalid_code");
    let with_token = |t: &str| {
        Request::post("/v1/project")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(project(with_token(&token)).await.status, StatusCode::OK);
    project(with_token("vxt_nope"))
        .await
        .expect_error(401, "unauthorized");
    project(post_json("/v1/project", "{}"))
        .await
        .expect_error(401, "unauthorized");
    h.revoke("alice-01");
    project(with_token(&token))
        .await
        .expect_error(403, "revoked");
    let served = h
        .audit()
        .into_iter()
        .filter(|e| e.event == "broker.project.served")
        .count();
    assert_eq!(served, 2, "one audit line per config handed out");
}
