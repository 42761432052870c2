//! Issue 12 finding 10: the broker's server (`serve`, as `voxseal-broker` runs it, with its
//! config parsed from a file, and the demo stack's local issuer so no STS is needed) on a real
//! socket on 127.0.0.1 under a bounded flood of unauthenticated requests and a set of slowloris
//! connections, from other loopback addresses (127.0.0.2 and up), while honest contractors ask for
//! sessions from 127.0.0.1.
//!
//! Asserted: every honest request gets credentials within 1 s; the audit log grows by at most
//! the per-address refusal budget plus one summary line per address, however many requests
//! come; slow connections beyond the per-address cap are closed at once and the others at the
//! header deadline; a slow body gets 408. Figures are printed as `FLOOD ...` lines
//! (`cargo test -p voxseal-broker --test flood -- --nocapture`) and recorded in
//! docs/reliability.md.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use voxseal_broker::config::Config;
use voxseal_broker::registry::{DEFAULT_CODE_TTL, Registry};
use voxseal_broker::serve::serve;
use voxseal_broker::{AppState, Settings};
use voxseal_core::store::audit::AuditLog;
use voxseal_localstack::grants::GrantStore;
use voxseal_localstack::issuer::LocalIssuer;

/// Attacking addresses (127.0.0.2 ..), each with this many concurrent flooding tasks.
const FLOOD_ADDRESSES: u8 = 4;
const TASKS_PER_ADDRESS: usize = 12;
/// The flood stops after this long or this many requests, whichever comes first.
const FLOOD_SECS: u64 = 6;
const FLOOD_MAX_REQUESTS: u64 = 50_000;
/// Per-address refusal budget and connection cap configured for the test broker.
const CLIENT_BURST: u64 = 20;
const CLIENT_REFILL_SECS: u64 = 5;
const PER_ADDRESS: usize = 32;
const HEADER_TIMEOUT_SECS: u64 = 2;
/// Slowloris connections opened from one address.
const SLOW_CONNECTIONS: usize = 80;

struct Broker {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    registry: std::path::PathBuf,
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    async fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "bind = \"127.0.0.1:0\"\nregistry = \"registry.toml\"\naudit_log = \"broker-audit.log\"\n\
                 bucket = \"voxseal-flood\"\nregion = \"us-east-1\"\n\
                 kms_key_arn = \"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n\
                 issuer = \"local\"\nduration_secs = 900\nmax_body_bytes = 1024\n\
                 [rate_limit]\nburst = 100\nrefill_secs = 1\n\
                 [client_limit]\nburst = {CLIENT_BURST}\nrefill_secs = {CLIENT_REFILL_SECS}\n\
                 [connections]\nmax = 1024\nper_address = {PER_ADDRESS}\n\
                 header_timeout_secs = {HEADER_TIMEOUT_SECS}\nrequest_timeout_secs = 2\n"
            ),
        )
        .unwrap();
        let config = Config::from_sources(Some(&config), &|_| None).unwrap();
        let issuer = LocalIssuer::new(
            GrantStore::new(),
            config.target.clone(),
            config.duration_secs,
        )
        .unwrap();
        let state = AppState::with_limits(
            Settings::from(&config),
            config.client_limits.clone(),
            Arc::new(issuer),
        );
        let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, config.serve_limits, async {
            let _ = stopped.await;
        }));
        Broker {
            addr,
            stop: Some(stop),
            task: Some(task),
            registry: dir.path().join("registry.toml"),
            audit: dir.path().join("broker-audit.log"),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn add(&self, id: &str) -> String {
        let mut reg = Registry::load(&self.registry).unwrap();
        let code = reg.add(id.parse().unwrap(), DEFAULT_CODE_TTL).unwrap();
        reg.save().unwrap();
        code.expose_secret().to_owned()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn enroll(http: &reqwest::Client, b: &Broker, id: &str) -> (String, String) {
    let code = b.add(id);
    let r = http
        .post(b.url("/v1/enroll"))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    (code, v["token"].as_str().unwrap().to_owned())
}

/// One flooding task: cycles through malformed, oversized, unknown-token and replayed-code
/// requests until the deadline or the shared budget runs out.
async fn flood(
    http: reqwest::Client,
    base: String,
    used_code: String,
    deadline: Instant,
    sent: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    limited: Arc<AtomicU64>,
) {
    let unknown = format!("vxt_000000000000_{}", "A".repeat(43));
    let mut n = 0u64;
    while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < FLOOD_MAX_REQUESTS {
        n += 1;
        let req = match n % 4 {
            0 => http
                .post(format!("{base}/v1/enroll"))
                .header("content-type", "application/json")
                .body("{not json"),
            1 => http
                .post(format!("{base}/v1/enroll"))
                .header("content-type", "application/json")
                .body(vec![b' '; 4096]),
            2 => http
                .post(format!("{base}/v1/sessions"))
                .bearer_auth(&unknown),
            _ => http
                .post(format!("{base}/v1/enroll"))
                .json(&serde_json::json!({ "code": used_code })),
        };
        if let Ok(r) = req.send().await {
            answered.fetch_add(1, Ordering::Relaxed);
            if r.status() == 429 {
                limited.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Honest contractors asking for sessions from 127.0.0.1 every 250 ms until the deadline;
/// returns every latency.
async fn honest(b_url: String, tokens: Vec<String>, deadline: Instant) -> Vec<Duration> {
    let http = client_from([127, 0, 0, 1]);
    let mut lat = Vec::new();
    let mut i = 0;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let r = http
            .post(&b_url)
            .bearer_auth(&tokens[i % tokens.len()])
            .send()
            .await
            .expect("the broker answers honest contractors");
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        let took = t0.elapsed();
        assert_eq!(status, 200, "{body}");
        assert!(body["AccessKeyId"].is_string());
        assert!(
            took < Duration::from_secs(1),
            "honest session took {took:?}"
        );
        lat.push(took);
        i += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    lat
}

fn audit_lines(b: &Broker) -> Vec<voxseal_core::store::audit::AuditEntry> {
    AuditLog::new(&b.audit).entries().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_contractors_get_sessions_during_a_flood_and_the_log_stays_bounded() {
    let mut b = Broker::start().await;
    let local = client_from([127, 0, 0, 1]);
    let mut tokens = Vec::new();
    let mut used_code = String::new();
    for id in ["alice-01", "bob-02", "carol-03"] {
        let (code, token) = enroll(&local, &b, id).await;
        used_code = code;
        tokens.push(token);
    }
    let lines_before = audit_lines(&b).len();
    let bytes_before = std::fs::metadata(&b.audit).unwrap().len();

    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(FLOOD_SECS);
    let (sent, answered, limited) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut floods = tokio::task::JoinSet::new();
    for a in 0..FLOOD_ADDRESSES {
        let http = client_from([127, 0, 0, 2 + a]);
        for _ in 0..TASKS_PER_ADDRESS {
            floods.spawn(flood(
                http.clone(),
                format!("http://{}", b.addr),
                used_code.clone(),
                deadline,
                sent.clone(),
                answered.clone(),
                limited.clone(),
            ));
        }
    }
    let lat = honest(b.url("/v1/sessions"), tokens, deadline).await;
    while floods.join_next().await.is_some() {}
    let flood_s = t0.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed).min(FLOOD_MAX_REQUESTS);
    let answered = answered.load(Ordering::Relaxed);
    let limited = limited.load(Ordering::Relaxed);

    b.stop_keep().await;
    let entries = audit_lines(&b);
    let bytes_after = std::fs::metadata(&b.audit).unwrap().len();
    let new = &entries[lines_before..];
    let refused = new.iter().filter(|e| e.event.ends_with(".refused")).count() as u64;
    let summaries: Vec<_> = new
        .iter()
        .filter(|e| e.event == "broker.refusals.limited")
        .collect();
    let counted: u64 = summaries
        .iter()
        .map(|e| e.details["count"].as_u64().unwrap())
        .sum();
    let issued = new
        .iter()
        .filter(|e| e.event == "broker.session.issued")
        .count();

    let mut sorted = lat.clone();
    sorted.sort();
    eprintln!(
        "FLOOD {sent} requests from {FLOOD_ADDRESSES} addresses in {flood_s:.1} s ({:.0}/s), {limited} answered 429 unread; \
         honest: {} sessions, max {:.1} ms, median {:.1} ms; audit log +{} lines (+{} bytes): {refused} refusals, \
         {} summary lines counting {counted}, {issued} issuances",
        sent as f64 / flood_s,
        lat.len(),
        sorted.last().unwrap().as_secs_f64() * 1e3,
        sorted[sorted.len() / 2].as_secs_f64() * 1e3,
        new.len(),
        bytes_after - bytes_before,
        summaries.len(),
    );
    assert!(
        sent > 500,
        "the flood was too weak to mean anything: {sent}"
    );
    assert_eq!(issued, lat.len());
    // Per address: the burst, what refilled meanwhile (+2 for rounding and the wait for the
    // broker to stop), then one summary line.
    let per_address = CLIENT_BURST + (flood_s as u64 + 2) / CLIENT_REFILL_SECS + 1;
    assert!(
        refused <= u64::from(FLOOD_ADDRESSES) * per_address,
        "{refused} individual refusal lines"
    );
    assert_eq!(summaries.len(), usize::from(FLOOD_ADDRESSES));
    assert!(limited > answered / 2, "{limited} of {answered}");
    assert_eq!(
        refused + counted,
        answered,
        "every refusal has its own line or is counted, once"
    );
    assert!(
        (new.len() as u64) <= u64::from(FLOOD_ADDRESSES) * (per_address + 1) + lat.len() as u64,
        "{} lines",
        new.len()
    );
}

/// Reads until the server closes the connection or `limit` passes; returns when it closed.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let step = limit.clamp(Duration::from_millis(1), Duration::from_millis(100));
    s.set_read_timeout(Some(step)).unwrap();
    let mut buf = [0u8; 1024];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(t0.elapsed()),
        }
    }
    None
}

/// A blocking TCP connection from a chosen loopback address (std cannot bind before connecting).
async fn connect_from(ip: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((ip, 0))).unwrap();
    let s = s.connect(to).await.unwrap().into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_block_honest_ones() {
    let b = Broker::start().await;
    let local = client_from([127, 0, 0, 1]);
    let (_, token) = enroll(&local, &b, "alice-01").await;
    let addr = b.addr;

    // From 127.0.0.20: many connections that send half a request line and then nothing.
    let t0 = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..SLOW_CONNECTIONS {
        let mut s = connect_from([127, 0, 0, 20], addr).await;
        let _ = s.write_all(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n");
        conns.push(s);
    }
    let mut body_conn = connect_from([127, 0, 0, 21], addr).await;
    let slow = tokio::task::spawn_blocking(move || {
        // First the connections the server closed right away (over the per-address cap), then
        // how many of the rest it closes by the header deadline.
        std::thread::sleep(Duration::from_millis(300));
        let mut open = Vec::new();
        let mut at_once = 0;
        for mut s in conns {
            match closed_within(&mut s, Duration::from_millis(5)) {
                Some(_) => at_once += 1,
                None => open.push(s),
            }
        }
        let limit = Duration::from_secs(HEADER_TIMEOUT_SECS + 3);
        let mut at_deadline = 0;
        for s in open.iter_mut() {
            if closed_within(s, limit.saturating_sub(t0.elapsed())).is_some() {
                at_deadline += 1;
            }
        }
        (at_once, at_deadline, open.len() - at_deadline, t0.elapsed())
    });
    // A slow body from 127.0.0.21: headers at once, the body never.
    let slow_body = tokio::task::spawn_blocking(move || {
        let s = &mut body_conn;
        s.write_all(
            b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"co",
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    });

    // Meanwhile, honest sessions from 127.0.0.1.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lat = honest(
        b.url("/v1/sessions"),
        vec![token],
        Instant::now() + Duration::from_secs(HEADER_TIMEOUT_SECS + 1),
    )
    .await;
    let (at_once, at_deadline, still_open, all_closed) = slow.await.unwrap();
    let slow_body = slow_body.await.unwrap();

    let mut sorted = lat.clone();
    sorted.sort();
    eprintln!(
        "FLOOD slowloris: {SLOW_CONNECTIONS} half-open connections from one address: {at_once} closed at once, \
         {at_deadline} at the {HEADER_TIMEOUT_SECS} s header deadline ({all_closed:?} after opening), {still_open} still open; \
         honest: {} sessions, max {:.1} ms",
        lat.len(),
        sorted.last().unwrap().as_secs_f64() * 1e3,
    );
    assert_eq!(at_once, SLOW_CONNECTIONS - PER_ADDRESS);
    assert_eq!((at_deadline, still_open), (PER_ADDRESS, 0));
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body}");
    assert!(slow_body.contains("\"timeout\""), "{slow_body}");
    drop(b);
}

impl Broker {
    /// Stops it as SIGTERM does, then waits: the server writes its last refusal counts on the
    /// way out.
    async fn stop_keep(&mut self) {
        let _ = self.stop.take().expect("running").send(());
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the broker did not stop")
            .expect("the server task");
    }
}
