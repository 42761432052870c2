//! The broker's request parsing through its real router (`voxseal_broker::app` + tower's
//! `oneshot` on a current-thread tokio runtime, local issuer, temp registry and audit log):
//! method and path, Content-Type, the Authorization header and the JSON bodies of
//! `POST /v1/enroll` and `POST /v1/sessions`. The registry holds a pending code, an enrolled
//! token, a revoked token, a spent (so unknown) and an expired code (cheap Argon2 parameters),
//! so the fuzzer can reach every outcome; the registry's code and token parsers run on every
//! request.
//!
//! Checked: no panic; every status is a documented one (500 and 502 cannot happen with healthy
//! files and the local issuer, so they count as failures); every error body is exactly
//! `{"error":{"kind","message"[,"retry_after_s"]}}` with the kind's documented status and
//! `Cache-Control: no-store`; successes have the documented shape; the audit log stays intact.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use voxseal_fuzz::encode::{BrokerInput, Input};
use voxseal_fuzz::{Broker, Reply, documented_error};

fn broker() -> &'static Broker {
    static B: OnceLock<Broker> = OnceLock::new();
    B.get_or_init(Broker::new)
}

fn check(req: &BrokerInput, method: &str, path: &str, r: &Reply) {
    let status = r.status;
    assert!(
        !matches!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY
        ),
        "{method} {path}: {status} {:?}",
        r.body
    );
    if method == "HEAD" {
        return; // no body
    }
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: {status}: body is not JSON ({e}): {:?}",
            r.body
        )
    });
    assert_eq!(voxseal_fuzz::content_type(r), Some("application/json"));
    if status == StatusCode::OK {
        match path {
            "/healthz" => assert_eq!(body, serde_json::json!({"status": "ok"})),
            "/v1/enroll" => {
                assert_eq!(body["contractor"], "alice-01", "{body}");
                assert!(
                    body["token"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("vxt_"))
                );
            }
            _ => {
                assert!(path.starts_with("/v1/sessions"), "{method} {path}: 200");
                assert_eq!(body["Version"], 1, "{body}");
                assert!(body["AccessKeyId"].is_string(), "{body}");
                assert!(body["SecretAccessKey"].is_string(), "{body}");
                assert!(body["SessionToken"].is_string(), "{body}");
                assert_eq!(
                    body["Prefixes"],
                    serde_json::json!(["raw/bob-02/", "features/bob-02/", "manifests/bob-02/"]),
                    "credentials for anyone but bob-02's token: {body}"
                );
            }
        }
        // Credentials and tokens must not be cached. (/healthz has no Cache-Control, although
        // the crate docs say every success carries no-store: harmless, noted in
        // docs/fuzzing.md.)
        if path != "/healthz" {
            assert_eq!(
                r.headers
                    .get(header::CACHE_CONTROL)
                    .map(HeaderValue::as_bytes),
                Some(&b"no-store"[..])
            );
        }
        return;
    }
    let err = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{status}: {body}"));
    let kind = err["kind"].as_str().unwrap_or_default();
    assert_eq!(
        documented_error(kind),
        Some(status),
        "{method} {path}: {body}"
    );
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let allowed = if kind == "rate_limited" { 3 } else { 2 };
    assert_eq!(err.len(), allowed, "extra members in an error body: {body}");
    assert_eq!(
        r.headers
            .get(header::CACHE_CONTROL)
            .map(HeaderValue::as_bytes),
        Some(&b"no-store"[..])
    );
    let _ = req;
}

fuzz_target!(|data: &[u8]| {
    let b = broker();
    let req = BrokerInput::decode(&mut Input::new(data));
    let (method, path) = req.target();
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(ct) = req.content_type() {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    if req.headers & BrokerInput::HAS_AUTHORIZATION != 0 {
        match HeaderValue::from_bytes(&req.authorization) {
            Ok(v) => builder = builder.header(header::AUTHORIZATION, v),
            Err(_) => return, // no HTTP server would deliver it
        }
    }
    let request = builder
        .body(Body::from(req.body.clone()))
        .expect("a valid request");
    b.reset();
    let reply = b.call(request);
    check(&req, method, path, &reply);
    assert!(
        b.audit_intact(),
        "the broker's audit log no longer verifies"
    );
});
