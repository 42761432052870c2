//! Network and server faults around uploads that the uploader's own tests do not cover: the S3
//! server restarting mid-multipart, credentials the server expires before the client expected,
//! clock skew answered by the broker or by S3, and servers that do not confirm what they stored.
//! (A connection cut mid-multipart, proactive credential refresh and an unreachable broker are in
//! `crates/voxseal-cloud/tests/uploader.rs`; broker down then back in `crates/voxseal-cli/tests/cloud.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use voxseal_cloud::provider::{Backoff, BrokerSource, CredentialError, CredentialSource};
use voxseal_cloud::uploader::UploadError;
use voxseal_core::store::outbox::ItemStatus;
use voxseal_localstack::local_s3::LocalS3;
use voxseal_reliability::{KEY, MIB, Stack, StandIn, http_date};

/// Clock-skew answers from the broker (`clock_skew_at_the_broker_*`): +20 min, -20 min, +14 min
/// (accepted), and -20 min through the uploader with a queue.
const CASES_CLOCK_SKEW_BROKER: usize = 4;
/// Clock-skew answers from S3 (`clock_skew_at_s3_*`): RequestTimeTooSkewed with the server's Date
/// 20 min ahead.
const CASES_CLOCK_SKEW_S3: usize = 1;
const _: () = assert!(CASES_CLOCK_SKEW_S3 == 1 && CASES_BROKER_DOWN == 1);
/// Broker-down cases (`a_broker_that_is_down_*`): two clients at once.
const CASES_BROKER_DOWN: usize = 1;
/// Unconfirmed-upload answers tried (`a_payload_is_deleted_only_after_its_checksum_is_confirmed`).
const CASES_UNCONFIRMED: usize = 4;

fn events(s: &Stack) -> Vec<String> {
    s.ws.audit
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_multipart_resumes_to_exactly_one_object() {
    let mut s = Stack::new().await;
    // Three 5 MiB parts (S3's minimum part size, which the endpoint enforces).
    let item = s.big_item(12 * MIB as usize);
    let addr = s.s3.as_ref().unwrap().addr();
    let server = Arc::new(tokio::sync::Mutex::new(s.s3.take()));

    // After the first part is acknowledged, the server goes down (graceful shutdown closes every
    // connection) before the uploader may send another byte.
    let (down_tx, down_rx) = std::sync::mpsc::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopper = {
        let server = server.clone();
        tokio::spawn(async move {
            let _ = stop_rx.await;
            if let Some(s3) = server.lock().await.take() {
                s3.shutdown().await;
            }
            let _ = down_tx.send(());
        })
    };
    let stop_tx = std::sync::Mutex::new(Some(stop_tx));
    let down_rx = std::sync::Mutex::new(down_rx);
    let up = s.uploader(
        format!("http://{addr}"),
        s.minter(time::Duration::minutes(15)),
        5 * MIB,
        1,
    );
    let report = up
        .drain(&|p| {
            // A raw part (5 MiB) is done; the tiny features payload, uploaded alongside, is not
            // enough.
            if p.item_bytes_done >= 5 * MIB
                && let Some(tx) = stop_tx.lock().unwrap().take()
            {
                let _ = tx.send(());
                down_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(15))
                    .unwrap();
            }
        })
        .await
        .unwrap();
    stopper.await.unwrap();
    assert!(report.offline.is_some(), "{report:?}");
    assert_eq!(report.queued, 1);
    let mid = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    // The part in flight when the server went down may have finished (a graceful shutdown lets
    // requests in flight end); the last one cannot have.
    let parts = mid.state.objects["raw"]
        .multipart
        .as_ref()
        .unwrap()
        .parts
        .len();
    assert!(
        (1..3).contains(&parts),
        "{parts} of 3 parts survive the restart"
    );

    // The server comes back on the same address with the same disk: the upload resumes.
    s.s3 = Some(
        LocalS3::start(&s.dir.path().join("s3"), s.store.clone(), addr)
            .await
            .unwrap(),
    );
    let report = up.drain(&|_| {}).await.unwrap();
    assert_eq!(report.uploaded.len(), 1, "{report:?}");
    let objects = s.objects().await;
    let done = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    assert_eq!(
        objects,
        Stack::expected_objects(&done),
        "exactly one copy of each object, byte for byte"
    );
    let raw_state = &done.state.objects["raw"];
    assert!(
        raw_state
            .confirmed_checksum
            .as_deref()
            .is_some_and(|c| c.ends_with("-3")),
        "the composite checksum of three parts is confirmed: {raw_state:?}"
    );
    let ev = events(&s);
    assert!(ev.contains(&"upload.interrupted".into()) && ev.contains(&"upload.resumed".into()));
    assert!(
        !ev.contains(&"upload.restarted".into()),
        "resumed, not restarted: {ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_server_expires_early_are_refreshed_and_the_upload_continues() {
    let s = Stack::new().await;
    // Four 5 MiB parts; the endpoint honours each grant for 1.5 s while the credentials claim 15
    // minutes (a client clock that runs behind, or a grant cut short), so the client cannot
    // refresh in time and S3 answers ExpiredToken in the middle of the upload.
    let item = s.big_item(16 * MIB as usize);
    let minter = s.minter_claiming(
        time::Duration::milliseconds(1500),
        Some(time::Duration::minutes(15)),
    );
    let up = s.uploader(s.endpoint(), minter.clone(), 5 * MIB, 1);
    let report = up
        .drain(&|_| std::thread::sleep(Duration::from_millis(500)))
        .await
        .unwrap();
    assert_eq!(
        report.uploaded,
        vec![item.manifest.sample_id.to_string()],
        "one drain finishes the upload: {report:?}"
    );
    assert!(report.offline.is_none(), "{report:?}");
    assert!(minter.minted.load(Ordering::SeqCst) >= 2, "refreshed");
    let done = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    assert_eq!(s.objects().await, Stack::expected_objects(&done));
    let ev = events(&s);
    assert!(ev.contains(&"upload.resumed".into()), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_gets_a_few_jittered_retries_then_offline() {
    // Two clients hit a broker that answers 503 at the same moment (a restart): each retries a
    // bounded number of times with exponential backoff and full jitter, so their retries spread
    // out instead of arriving together, and then reports "offline", which keeps the queue.
    let broker = StandIn::start(|_, _| StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
    let backoff = Backoff {
        attempts: 4,
        base: Duration::from_millis(200),
        cap: Duration::from_millis(1600),
        jitter: voxseal_cloud::provider::Jitter::Full,
    };
    let client = || {
        BrokerSource::new(
            &broker.url(),
            secrecy::SecretString::from("vxt_x".to_owned()),
        )
        .with_backoff(backoff.clone())
    };
    let (a, b) = (client(), client());
    let t0 = std::time::Instant::now();
    let (ra, rb) = tokio::join!(a.fetch(), b.fetch());
    let took = t0.elapsed();
    for r in [ra, rb] {
        let e = r.unwrap_err();
        assert!(
            e.is_transient() && e.to_string().starts_with("offline"),
            "{e}"
        );
    }
    assert_eq!(broker.hits(), 8, "4 attempts each, no more");
    // Worst case: 200 + 400 + 800 ms of waiting per client.
    assert!(took < Duration::from_millis(1400 + 1000), "{took:?}");
    let times = broker.times.lock().unwrap().clone();
    let offsets: Vec<u128> = times.iter().map(|t| (*t - t0).as_millis()).collect();
    eprintln!("broker down: request times (ms) of two clients: {offsets:?}");
    // Apart from the first two (sent together), the retries do not arrive in pairs: with the same
    // fixed backoff all three rounds would (3 pairs within 5 ms). Random delays put two of six
    // retries within 5 ms of each other now and then, three pairs almost never.
    let later: Vec<&std::time::Instant> = times.iter().skip(2).collect();
    let pairs = later
        .windows(2)
        .filter(|w| w[1].duration_since(*w[0]) < Duration::from_millis(5))
        .count();
    assert!(pairs < 3, "retries arrive in lockstep: {offsets:?}");
}

fn date_only(offset: time::Duration) -> Response {
    let mut r = (StatusCode::OK, "{}").into_response();
    r.headers_mut().insert(
        header::DATE,
        HeaderValue::from_str(&http_date(offset)).unwrap(),
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_at_the_broker_is_one_request_and_a_clear_message() {
    let mut ran = 0;
    for (offset, skewed) in [
        (time::Duration::minutes(20), true),
        (time::Duration::minutes(-20), true),
        (time::Duration::minutes(14), false),
    ] {
        let broker = StandIn::start(move |_, _| date_only(offset)).await;
        let source = BrokerSource::new(
            &broker.url(),
            secrecy::SecretString::from("vxt_x".to_owned()),
        )
        .with_backoff(Backoff {
            attempts: 4,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            jitter: voxseal_cloud::provider::Jitter::Full,
        });
        let err = source.fetch().await.unwrap_err();
        if skewed {
            let CredentialError::ClockSkew { skew_s } = err else {
                panic!("{offset}: {err}")
            };
            assert!((skew_s.abs() - 1200).abs() < 60, "{skew_s}");
            let msg = err.to_string();
            assert!(msg.contains("clock") && msg.contains("15 minutes"), "{msg}");
            assert_eq!(broker.hits(), 1, "{offset}: no retries for a wrong clock");
        } else {
            assert!(
                !matches!(err, CredentialError::ClockSkew { .. }),
                "14 minutes is within what AWS accepts: {err}"
            );
        }
        ran += 1;
    }

    // Through the uploader with three takes queued: one broker request, nothing sent to S3,
    // the takes stay queued, and the error says what to do.
    let s = Stack::new().await;
    for _ in 0..3 {
        s.seal(1.0);
    }
    let broker = StandIn::start(|_, _| date_only(time::Duration::minutes(-20))).await;
    let source = Arc::new(BrokerSource::new(
        &broker.url(),
        secrecy::SecretString::from("vxt_x".to_owned()),
    ));
    let up = s.uploader(s.endpoint(), source, 8 * MIB, 2);
    let err = up.drain(&|_| {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Credentials(CredentialError::ClockSkew { .. })
        ),
        "{err}"
    );
    assert_eq!(broker.hits(), 1);
    assert!(s.objects().await.is_empty());
    let (items, _) = s.ws.outbox.list().unwrap();
    assert!(items.iter().all(|i| i.state.status != ItemStatus::Uploaded));
    assert!(items.iter().all(|i| i.local_bytes() > 0), "nothing lost");
    // A second drain (the app's next try) is again one request, not a storm.
    let _ = up.drain(&|_| {}).await.unwrap_err();
    assert_eq!(broker.hits(), 2);
    ran += 1;
    assert_eq!(ran, CASES_CLOCK_SKEW_BROKER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_at_s3_stops_the_drain_with_a_clear_message() {
    let s = Stack::new().await;
    for _ in 0..3 {
        s.seal(1.0);
    }
    let s3 = StandIn::start(|_, _| {
        let mut r = (
            StatusCode::FORBIDDEN,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>RequestTimeTooSkewed</Code>\
             <Message>The difference between the request time and the current time is too large.</Message>\
             <RequestId>1</RequestId></Error>",
        )
            .into_response();
        r.headers_mut().insert(
            header::DATE,
            HeaderValue::from_str(&http_date(time::Duration::minutes(20))).unwrap(),
        );
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        r
    })
    .await;
    let up = s.uploader(s3.url(), s.minter(time::Duration::minutes(15)), 8 * MIB, 2);
    let err = up.drain(&|_| {}).await.unwrap_err();
    assert!(matches!(err, UploadError::ClockSkew), "{err}");
    assert!(err.to_string().contains("clock"), "{err}");
    // The SDK retries a skew error with its clock corrected by the server's Date (on real S3
    // that retry succeeds), at most 3 attempts for each of the first take's two payloads, which
    // upload at once; after that the drain stops: the two other takes are not tried.
    let hits = s3.hits();
    eprintln!("S3 requests for a skewed clock: {hits}");
    assert!((1..=6).contains(&hits), "{hits} requests");
    let (items, _) = s.ws.outbox.list().unwrap();
    assert_eq!(
        items
            .iter()
            .filter(|i| i.state.status == ItemStatus::Sealed)
            .count(),
        2,
        "the other takes were not tried"
    );
    assert!(items.iter().all(|i| i.local_bytes() > 0), "nothing lost");
}

/// How the S3 stand-in answers a PutObject.
#[derive(Clone, Copy)]
enum Answer {
    WrongChecksum = 0,
    NoChecksum = 1,
    Exists = 2,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_is_deleted_only_after_its_checksum_is_confirmed() {
    let mode = Arc::new(AtomicU32::new(Answer::WrongChecksum as u32));
    let m = mode.clone();
    let s3 = StandIn::start(move |_, _| {
        let mut r = match m.load(Ordering::SeqCst) {
            2 => (
                StatusCode::PRECONDITION_FAILED,
                "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>",
            )
                .into_response(),
            answer => {
                let mut r = StatusCode::OK.into_response();
                r.headers_mut()
                    .insert(header::ETAG, HeaderValue::from_static("\"e\""));
                if answer == 0 {
                    r.headers_mut().insert(
                        "x-amz-checksum-sha256",
                        HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                    );
                }
                r
            }
        };
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        r
    })
    .await;
    let mut ran = 0;
    for first in [Answer::WrongChecksum, Answer::NoChecksum] {
        let s = Stack::new().await;
        let item = s.seal(1.0);
        let raw = item.dir.join("raw.wav.age");
        let up = s.uploader(s3.url(), s.minter(time::Duration::minutes(15)), 8 * MIB, 2);
        // The server says it stored something, but not provably our bytes.
        mode.store(first as u32, Ordering::SeqCst);
        let report = up.drain(&|_| {}).await.unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(
            report.failed[0].1.contains("the local copy is kept"),
            "{report:?}"
        );
        assert!(raw.exists(), "kept after an unconfirmed upload");
        let got = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
        assert_ne!(got.state.status, ItemStatus::Uploaded);
        assert_eq!(
            s.ws.raw_on_machine().unwrap().sealed_raw,
            1,
            "still counted"
        );
        ran += 1;
        // The retry finds the key taken (412). That proves nothing about its content: the copy
        // stays, and the item says why.
        mode.store(Answer::Exists as u32, Ordering::SeqCst);
        let report = up.drain(&|_| {}).await.unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(
            raw.exists(),
            "a 412 after an unconfirmed upload is no confirmation"
        );
        let got = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
        assert_ne!(got.state.status, ItemStatus::Uploaded);
        ran += 1;
    }
    assert_eq!(ran, CASES_UNCONFIRMED);
    let _ = KEY;
}
