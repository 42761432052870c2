//! Load: the broker under many contractors at once, and the uploader with a long queue.
//! Figures are printed as `LOAD ...` lines (`cargo test -p voxseal-reliability --test load --
//! --nocapture`) and recorded in docs/reliability.md; the bounds asserted here are the ones the
//! document states.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voxseal_broker::issuer::Target;
use voxseal_broker::ratelimit::RateLimit;
use voxseal_broker::registry::{DEFAULT_CODE_TTL, Registry};
use voxseal_broker::{AppState, Settings, app};
use voxseal_core::store::outbox::ItemStatus;
use voxseal_localstack::grants::GrantStore;
use voxseal_localstack::issuer::LocalIssuer;
use voxseal_reliability::{BUCKET, KEY, MIB, Stack};

/// Enrolled contractors.
const CONTRACTORS: usize = 250;
/// Credential requests sent at once (each token's first: a full Argon2 verification).
const CONCURRENT: usize = 200;
/// Credential requests sent one after another (cached verifications).
const SEQUENTIAL: usize = 2000;
/// Bound on each broker phase, seconds (debug build, 2 shared cores).
const BROKER_PHASE_MAX_S: u64 = 60;
/// Small takes queued for the uploader.
const SMALL_ITEMS: usize = 1000;
/// Of which really recorded and sealed; the rest are resealed copies of them (new ids, new
/// ciphertext, same sizes: see `Stack::resealed`), since sealing a thousand takes in a debug
/// build takes minutes (docs/performance.md, "Notes moved from the code").
const REALLY_SEALED: usize = 20;
/// Large (multipart) items queued with them.
const LARGE_ITEMS: usize = 3;
/// Bound on draining that queue, seconds (debug build, 2 shared cores).
const DRAIN_MAX_S: u64 = 240;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut lat: Vec<Duration>, total: Duration, limited: usize) -> String {
    lat.sort();
    format!(
        "LOAD {name}: {} requests in {:.2} s ({:.0}/s), p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {limited} rate-limited",
        lat.len(),
        total.as_secs_f64(),
        lat.len() as f64 / total.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.95).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    )
}

/// One credential request; its latency, and whether it was rate limited. Anything else than
/// 200 or 429 fails the test.
async fn session(http: &reqwest::Client, url: &str, token: &str) -> (Duration, bool) {
    let t0 = Instant::now();
    let resp = http
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("the broker answers");
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("a JSON body");
    let took = t0.elapsed();
    match status {
        200 => {
            assert!(
                body["AccessKeyId"].is_string(),
                "no credentials in a 200 answer"
            );
            (took, false)
        }
        429 => (took, true),
        other => panic!("HTTP {other}: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_serves_hundreds_of_contractors_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.toml");
    // Enrolled the way `voxseal enroll add` and the broker's /v1/enroll do it.
    let t0 = Instant::now();
    let tokens: Vec<String> = tokio::task::spawn_blocking({
        let registry = registry.clone();
        move || {
            let mut reg = Registry::load(&registry).unwrap();
            let codes: Vec<String> = (0..CONTRACTORS)
                .map(|i| {
                    let id = format!("load-{i:03}").parse().unwrap();
                    reg.add(id, DEFAULT_CODE_TTL)
                        .unwrap()
                        .expose_secret()
                        .to_owned()
                })
                .collect();
            let tokens = codes
                .iter()
                .map(|c| reg.redeem(c).unwrap().expose_secret().to_owned())
                .collect();
            reg.save().unwrap();
            tokens
        }
    })
    .await
    .unwrap();
    eprintln!("enrolled {CONTRACTORS} contractors in {:?}", t0.elapsed());

    let store = GrantStore::new();
    let issuer =
        LocalIssuer::new(store, Target::new(BUCKET, "us-east-1", KEY).unwrap(), 900).unwrap();
    let state = AppState::new(
        Settings {
            registry,
            audit_log: dir.path().join("broker-audit.log"),
            rate_limit: RateLimit::default(),
            max_body_bytes: 4096,
            project: None,
        },
        Arc::new(issuer),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/sessions", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENT)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    // All at once: every request is its token's first, so each costs a full Argon2id check.
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for token in tokens.iter().take(CONCURRENT) {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        set.spawn(async move { session(&http, &url, &token).await });
    }
    let mut lat = Vec::new();
    let mut limited = 0;
    while let Some(r) = set.join_next().await {
        let (d, l) = r.unwrap();
        lat.push(d);
        limited += l as usize;
    }
    let concurrent = t0.elapsed();
    eprintln!("{}", summary("broker concurrent", lat, concurrent, limited));
    assert!(
        concurrent < Duration::from_secs(BROKER_PHASE_MAX_S),
        "{concurrent:?}"
    );

    // One after another, round robin over every contractor (the last 50 verify for the first
    // time here; the rest hit the verification cache).
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut limited = 0;
    for n in 0..SEQUENTIAL {
        let (d, l) = session(&http, &url, &tokens[n % CONTRACTORS]).await;
        lat.push(d);
        limited += l as usize;
    }
    let sequential = t0.elapsed();
    eprintln!("{}", summary("broker sequential", lat, sequential, limited));
    assert!(
        sequential < Duration::from_secs(BROKER_PHASE_MAX_S),
        "{sequential:?}"
    );
    // 1 + 8 requests per contractor stay inside the default burst of 10: none is limited.
    assert_eq!(limited, 0);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uploader_drains_a_thousand_takes_and_large_ones_exactly_once() {
    let s = Stack::new().await;
    let t0 = Instant::now();
    for _ in 0..LARGE_ITEMS {
        s.big_item(12 * MIB as usize);
    }
    let real: Vec<_> = (0..REALLY_SEALED).map(|_| s.seal(0.5)).collect();
    for n in REALLY_SEALED..SMALL_ITEMS {
        s.resealed(&real[n % REALLY_SEALED]);
    }
    let sealing = t0.elapsed();
    eprintln!(
        "LOAD queue: {SMALL_ITEMS} takes of 0.5 s ({REALLY_SEALED} sealed, the rest resealed) and {LARGE_ITEMS} of 12 MiB queued in {:.1} s",
        sealing.as_secs_f64()
    );
    let (items, _) = s.ws.outbox.list().unwrap();
    assert_eq!(items.len(), SMALL_ITEMS + LARGE_ITEMS);
    let bytes: u64 = items.iter().map(|i| i.local_bytes()).sum();

    let up = s.uploader(
        s.endpoint(),
        s.minter(time::Duration::minutes(15)),
        5 * MIB,
        4,
    );
    let t0 = Instant::now();
    let report = up.drain(&|_| {}).await.unwrap();
    let drain = t0.elapsed();
    eprintln!(
        "LOAD uploader: {} items ({} objects, {:.1} MiB) in {:.1} s ({:.0} items/s, {:.1} MiB/s)",
        report.uploaded.len(),
        3 * report.uploaded.len(),
        bytes as f64 / MIB as f64,
        drain.as_secs_f64(),
        report.uploaded.len() as f64 / drain.as_secs_f64(),
        bytes as f64 / MIB as f64 / drain.as_secs_f64()
    );
    assert_eq!(
        report.uploaded.len(),
        SMALL_ITEMS + LARGE_ITEMS,
        "{:?}",
        report.failed
    );
    assert!(report.failed.is_empty() && report.offline.is_none());
    assert!(drain < Duration::from_secs(DRAIN_MAX_S), "{drain:?}");

    // Exactly once: exactly the expected keys, with the sealed sizes; nothing left locally.
    let (items, _) = s.ws.outbox.list().unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for i in &items {
        assert_eq!(i.state.status, ItemStatus::Uploaded);
        assert_eq!(i.local_bytes(), 0);
        assert!(
            i.state
                .objects
                .values()
                .all(|o| o.confirmed_checksum.is_some())
        );
        for (k, _) in Stack::expected_objects(i) {
            expected.insert(k, ());
        }
    }
    let stored = s.keys().await;
    assert_eq!(stored.len(), 3 * (SMALL_ITEMS + LARGE_ITEMS));
    assert_eq!(stored, expected.into_keys().collect::<Vec<_>>());
    assert_eq!(s.ws.raw_on_machine().unwrap().total(), 0);
    // A second drain finds nothing to do.
    assert!(up.drain(&|_| {}).await.unwrap().uploaded.is_empty());
}
