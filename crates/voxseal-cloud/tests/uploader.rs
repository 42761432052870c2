//! The uploader against the embedded S3 endpoint over real HTTP: order, SSE-KMS, checksums,
//! never-overwrite, resumable multipart across a cut connection, refresh of short-lived grants,
//! and offline behaviour. The stack (data directory, project, endpoint, grant minter) is the
//! reliability tests' [`voxseal_reliability::Stack`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use voxseal_cloud::uploader::UploadError;
use voxseal_core::store::outbox::ItemStatus;
use voxseal_reliability::{BUCKET, KEY, MIB, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_payloads_then_manifest_with_sse_and_confirmed_checksums() {
    let s = Stack::new().await;
    let item = s.seal(3.0);
    let up = s.uploader(
        s.endpoint(),
        s.minter(time::Duration::minutes(15)),
        8 * MIB,
        2,
    );
    let report = up.drain(&|_| {}).await.unwrap();
    assert_eq!(report.uploaded, vec![item.manifest.sample_id.to_string()]);
    let keys = s.keys().await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    let c = "alice-01";
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("raw/{c}/")) && k.ends_with(".wav.age"))
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("features/{c}/")) && k.ends_with(".safetensors.age"))
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("manifests/{c}/")) && k.ends_with(".json"))
    );
    for k in &keys {
        let head = s
            .admin()
            .head_object()
            .bucket(BUCKET)
            .key(k)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|e| e.as_str()),
            Some("aws:kms"),
            "{k}"
        );
        assert_eq!(head.ssekms_key_id(), Some(KEY));
        assert!(head.checksum_sha256().is_some(), "{k}");
    }
    // The raw object is byte-identical to what was sealed.
    let raw_key = keys.iter().find(|k| k.starts_with("raw/")).unwrap();
    let got = s.get(raw_key).await;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&got));
    assert_eq!(sha, item.manifest.payloads[0].sha256);
    // Local ciphertext is gone, the manifest stays as the record; state says uploaded.
    let item = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    assert_eq!(item.state.status, ItemStatus::Uploaded);
    assert!(
        !item.dir.join("raw.wav.age").exists()
            && !item.dir.join("features.safetensors.age").exists()
    );
    assert!(item.dir.join("manifest.json").exists());
    assert!(
        item.state
            .objects
            .values()
            .all(|o| o.done && o.confirmed_checksum.is_some())
    );
    assert_eq!(s.ws.raw_on_machine().unwrap().total(), 0);
    // A second drain has nothing to do, and no new checkpoint either.
    let again = up.drain(&|_| {}).await.unwrap();
    assert!(again.uploaded.is_empty() && again.checkpoint.is_none());
    assert_eq!(s.checkpoint_keys().await.len(), 1);
}

/// Issue 12 finding 14: after a drain that stored items, the audit log's head is in the bucket
/// (under the contractor's own prefix, SSE-KMS like every object), and the log records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_ends_with_an_audit_checkpoint_in_the_bucket() {
    use voxseal_core::store::audit::Checkpoint;
    let s = Stack::new().await;
    s.seal(2.0);
    let up = s.uploader(
        s.endpoint(),
        s.minter(time::Duration::minutes(15)),
        8 * MIB,
        2,
    );
    let report = up.drain(&|_| {}).await.unwrap();
    let key = report
        .checkpoint
        .clone()
        .expect("a checkpoint was uploaded");
    assert_eq!(report.checkpoint_error, None);
    assert_eq!(s.checkpoint_keys().await, vec![key.clone()]);
    assert!(
        key.starts_with("manifests/alice-01/audit/") && key.ends_with(".checkpoint"),
        "{key}"
    );
    let head = s
        .admin()
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some(KEY));
    let cp = Checkpoint::from_json(&s.get(&key).await).unwrap();
    assert_eq!(cp.contractor.as_str(), "alice-01");
    // It records the head after the item's upload events, and the log says so right after.
    let report = voxseal_core::store::audit::verify(s.ws.audit.path()).unwrap();
    let n = report.entries.len();
    assert_eq!(cp.seq as usize, n - 1);
    assert_eq!(report.entries[n - 2].event, "item.uploaded");
    assert_eq!(report.hashes[n - 2], cp.hash);
    let last = &report.entries[n - 1];
    assert_eq!(last.event, "audit.checkpointed");
    assert_eq!(last.details["key"], key.as_str());
    voxseal_core::store::audit::check_checkpoint(&report, &cp).unwrap();
}

/// Credentials that claim another contractor's prefixes than the grant allows: the samples go
/// to the grant's own keys, but the checkpoint (keyed by the claimed `manifests/` prefix) is
/// refused by the endpoint.
#[derive(Debug)]
struct ClaimingOtherPrefix(
    Arc<dyn voxseal_cloud::provider::CredentialSource>,
    AtomicBool,
);

impl voxseal_cloud::provider::CredentialSource for ClaimingOtherPrefix {
    fn fetch(&self) -> voxseal_cloud::provider::CredentialFuture<'_> {
        Box::pin(async move {
            let mut c = self.0.fetch().await?;
            if self.1.load(Ordering::SeqCst) {
                c.prefixes = vec!["manifests/bob-02/".into()];
            }
            Ok(c)
        })
    }
}

/// A checkpoint the bucket refuses never fails the contractor's upload: the item is uploaded,
/// the failure is audited, and the next drain stores the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_checkpoint_does_not_fail_the_upload_and_is_retried() {
    let s = Stack::new().await;
    let item = s.seal(2.0);
    let source = Arc::new(ClaimingOtherPrefix(
        s.minter(time::Duration::minutes(15)),
        AtomicBool::new(true),
    ));
    let up = s.uploader(s.endpoint(), source.clone(), 8 * MIB, 2);
    let report = up.drain(&|_| {}).await.unwrap();
    assert_eq!(report.uploaded, vec![item.manifest.sample_id.to_string()]);
    assert!(report.failed.is_empty());
    let why = report.checkpoint_error.expect("the checkpoint was refused");
    assert!(why.contains("AccessDenied"), "{why}");
    assert!(s.checkpoint_keys().await.is_empty());
    let events = s.ws.audit.entries().unwrap();
    assert_eq!(events.last().unwrap().event, "audit.checkpoint_failed");
    assert_eq!(
        s.ws.outbox
            .get(&item.manifest.sample_id)
            .unwrap()
            .state
            .status,
        ItemStatus::Uploaded
    );

    // Nothing left to upload, but the checkpoint is still due: the next drain stores it.
    source.1.store(false, Ordering::SeqCst);
    let up = s.uploader(s.endpoint(), source, 8 * MIB, 2);
    let report = up.drain(&|_| {}).await.unwrap();
    assert!(report.uploaded.is_empty());
    let key = report.checkpoint.expect("retried");
    assert_eq!(s.checkpoint_keys().await, vec![key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_upload_never_overwrites_and_is_recorded_as_already_stored() {
    let s = Stack::new().await;
    let item = s.seal(2.0);
    // Keep copies so the "crash before the state was saved" can be replayed.
    let backup = tempfile::tempdir().unwrap();
    for f in ["raw.wav.age", "features.safetensors.age", "state.json"] {
        std::fs::copy(item.dir.join(f), backup.path().join(f)).unwrap();
    }
    let up = s.uploader(
        s.endpoint(),
        s.minter(time::Duration::minutes(15)),
        8 * MIB,
        2,
    );
    up.drain(&|_| {}).await.unwrap();
    for f in ["raw.wav.age", "features.safetensors.age", "state.json"] {
        std::fs::copy(backup.path().join(f), item.dir.join(f)).unwrap();
    }
    let report = up.drain(&|_| {}).await.unwrap();
    assert_eq!(report.uploaded.len(), 1);
    let item = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    assert!(
        item.state.objects.values().all(|o| o.already_existed),
        "{:?}",
        item.state.objects
    );
    assert_eq!(s.keys().await.len(), 3, "exactly one copy of each object");
    let events: Vec<String> =
        s.ws.audit
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "upload.already_stored")
            .count(),
        3,
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_local_ciphertext_is_refused_by_the_server_and_kept() {
    let s = Stack::new().await;
    let item = s.seal(2.0);
    let path = item.dir.join("features.safetensors.age");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let up = s.uploader(
        s.endpoint(),
        s.minter(time::Duration::minutes(15)),
        8 * MIB,
        2,
    );
    let report = up.drain(&|_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].1.contains("BadDigest"),
        "{}",
        report.failed[0].1
    );
    assert!(path.exists(), "the local copy is kept");
    let keys = s.keys().await;
    assert!(
        !keys.iter().any(|k| k.starts_with("features/")),
        "nothing stored: {keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.starts_with("manifests/")),
        "no manifest without its payloads"
    );
    let item = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    assert_eq!(item.state.status, ItemStatus::Failed);
}

/// A TCP proxy that can cut every connection after a byte budget, and refuse until restored.
struct Proxy {
    addr: SocketAddr,
    budget: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let budget = Arc::new(AtomicU64::new(u64::MAX));
        let up = Arc::new(AtomicBool::new(true));
        let (b, u) = (budget.clone(), up.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !u.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (b, u) = (b.clone(), u.clone());
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let upstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = cr.read(&mut buf).await.unwrap_or(0);
                            if n == 0 || !u.load(Ordering::SeqCst) {
                                break;
                            }
                            let left = b.fetch_sub(n as u64, Ordering::SeqCst);
                            if left < n as u64 {
                                u.store(false, Ordering::SeqCst); // the cut
                                break;
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let downstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = sr.read(&mut buf).await.unwrap_or(0);
                            if n == 0
                                || !u.load(Ordering::SeqCst)
                                || cw.write_all(&buf[..n]).await.is_err()
                            {
                                break;
                            }
                        }
                    };
                    tokio::select! { _ = upstream => {}, _ = downstream => {} }
                });
            }
        });
        Self { addr, budget, up }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn cut_after(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.budget.store(u64::MAX, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_multipart_resumes_to_exactly_one_object() {
    let s = Stack::new().await;
    // 70 s of 48 kHz 16-bit audio: a ~6.7 MB raw payload, two 5 MiB parts.
    let item = s.seal(70.0);
    let raw_size = item.manifest.payloads[0].size;
    assert!(raw_size > 6 * 1024 * 1024, "{raw_size}");
    let proxy = Proxy::start(s.s3.as_ref().expect("the endpoint is running").addr()).await;
    // One part at a time, so the first part completes and the cut lands inside the second (the
    // features payload, a single PutObject, goes at the same time as the raw parts).
    let features_size = item.manifest.payloads[1].size;
    let up = s.uploader(
        proxy.url(),
        s.minter(time::Duration::minutes(15)),
        5 * MIB,
        1,
    );
    proxy.cut_after(features_size + 5 * 1024 * 1024 + 512 * 1024);
    let report = up.drain(&|_| {}).await.unwrap();
    assert!(
        report.offline.is_some(),
        "the cut is reported as offline: {report:?}"
    );
    assert_eq!(report.queued, 1);
    let mid = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    let mp = mid.state.objects["raw"]
        .multipart
        .clone()
        .expect("multipart state persisted");
    assert!(
        !mp.parts.is_empty(),
        "at least one acknowledged part survives: {mp:?}"
    );
    let keys = s.keys().await;
    assert!(
        keys.iter().all(|k| k.starts_with("features/")),
        "neither the raw payload nor the manifest is complete yet: {keys:?}"
    );

    proxy.restore();
    let report = up.drain(&|_| {}).await.unwrap();
    assert_eq!(report.uploaded.len(), 1, "{report:?}");
    // The resumed run sent the missing part, the features and the manifest, not the whole raw
    // payload again.
    let sent = u64::MAX - proxy.budget.load(Ordering::SeqCst);
    assert!(
        sent < raw_size - 5 * 1024 * 1024 + features_size + 256 * 1024,
        "resent {sent} bytes"
    );
    let keys = s.keys().await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    let events: Vec<String> =
        s.ws.audit
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
    assert!(
        events.contains(&"upload.interrupted".to_owned()),
        "{events:?}"
    );
    let done = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    let raw = &done.state.objects["raw"];
    assert!(
        raw.confirmed_checksum
            .as_deref()
            .is_some_and(|c| c.ends_with("-2")),
        "composite checksum {raw:?}"
    );
    // New uploads use CRC32C parts: the object's COMPOSITE CRC32C is what was confirmed.
    let head = s
        .admin()
        .head_object()
        .bucket(BUCKET)
        .key(&raw.key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32_c(), raw.confirmed_checksum.as_deref());
    assert_eq!(head.checksum_sha256(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_grants_are_refreshed_during_a_long_upload() {
    let s = Stack::new().await;
    s.seal(70.0);
    s.seal(70.0);
    let minter = s.minter(time::Duration::seconds(2));
    let up = s.uploader(s.endpoint(), minter.clone(), 5 * MIB, 2);
    // Slow the uploads so they outlast a grant: throttle through a delay per drain step.
    let report = up
        .drain(&|_| std::thread::sleep(Duration::from_millis(150)))
        .await
        .unwrap();
    assert_eq!(report.uploaded.len(), 2, "{report:?}");
    assert!(
        minter.minted.load(Ordering::SeqCst) >= 2,
        "credentials were refreshed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_means_queued_not_lost() {
    let s = Stack::new().await;
    let item = s.seal(2.0);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let broker = voxseal_cloud::provider::BrokerSource::new(
        &format!("http://127.0.0.1:{port}"),
        secrecy::SecretString::from("vxt_x".to_owned()),
    )
    .with_backoff(voxseal_cloud::provider::Backoff {
        attempts: 2,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(50),
        jitter: voxseal_cloud::provider::Jitter::Full,
    });
    let up = s.uploader(s.endpoint(), Arc::new(broker), 8 * MIB, 2);
    let report = up.drain(&|_| {}).await.unwrap();
    let why = report.offline.expect("offline");
    assert!(why.starts_with("offline: cannot reach the broker"), "{why}");
    assert_eq!(report.queued, 1);
    let item = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    assert_ne!(item.state.status, ItemStatus::Uploaded);
    assert!(item.dir.join("raw.wav.age").exists());
    // Nothing about the error is a secret, and it names what to do.
    let _ = UploadError::Offline(why);
}
