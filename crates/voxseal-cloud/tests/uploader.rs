//! The uploader against the embedded S3 endpoint over real HTTP: order, SSE-KMS, checksums,
//! never-overwrite, resumable multipart across a cut connection, refresh of short-lived grants,
//! and offline behaviour.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use voxseal_cloud::grants::GrantStore;
use voxseal_cloud::local_s3::LocalS3;
use voxseal_cloud::provider::{CachingProvider, CredentialFuture, CredentialSource};
use voxseal_cloud::uploader::{UploadConfig, UploadError, Uploader};
use voxseal_core::audio::{AudioSource, SyntheticKind, SyntheticSource};
use voxseal_core::config::ProjectConfig;
use voxseal_core::ids::ContractorId;
use voxseal_core::outbox::{ItemStatus, OutboxItem};
use voxseal_core::recorder::{RecorderOptions, Recording, SourceFactory};
use voxseal_core::seal::Review;
use voxseal_core::workspace::Workspace;

const BUCKET: &str = "voxseal-test";
const KEY: &str = "arn:aws:kms:us-east-1:000000000000:key/voxseal-test";
const ADMIN: (&str, &str) = ("ADMINKEY", "ADMINSECRET0123456789");

/// Mints grants the way the broker's local issuer does, counting how often.
#[derive(Debug)]
struct Minter {
    store: GrantStore,
    contractor: ContractorId,
    lifetime: time::Duration,
    minted: AtomicU32,
}

impl CredentialSource for Minter {
    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(async move {
            self.minted.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .store
                .mint(&self.contractor, BUCKET, "us-east-1", KEY, self.lifetime))
        })
    }
}

struct Stack {
    _dir: tempfile::TempDir,
    ws: Workspace,
    config: ProjectConfig,
    s3: LocalS3,
    store: GrantStore,
    contractor: ContractorId,
}

async fn stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let store = GrantStore::new();
    store.add_admin(ADMIN.0, ADMIN.1);
    let s3 = LocalS3::start(
        &dir.path().join("s3"),
        store.clone(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    s3.create_bucket(BUCKET).unwrap();
    let training =
        voxseal_core::keys::generate_identity_file(&dir.path().join("t.key"), "t").unwrap();
    let archive =
        voxseal_core::keys::generate_identity_file(&dir.path().join("a.key"), "a").unwrap();
    let config = ProjectConfig::parse(
        &format!("[project]\nname = \"upload-test\"\n[recipients]\ntraining = [\"{training}\"]\narchive = [\"{archive}\"]\n[capture]\nmax_take_s = 600\n"),
        "test",
    )
    .unwrap();
    let (ws, _) = Workspace::open(&dir.path().join("data")).unwrap();
    Stack {
        _dir: dir,
        ws,
        config,
        s3,
        store,
        contractor: "alice-01".parse().unwrap(),
    }
}

impl Stack {
    fn seal(&self, seconds: f64) -> OutboxItem {
        let factory: SourceFactory = Box::new(move || {
            Ok(Box::new(SyntheticSource::new(
                SyntheticKind::Speech,
                48_000,
                Some(seconds),
            )) as Box<dyn AudioSource>)
        });
        let take = Recording::start(factory, RecorderOptions::new(self.ws.spool_dir()), |_| {})
            .unwrap()
            .wait()
            .unwrap();
        let mut cfg = self.config.clone();
        cfg.capture.trim_silence = false;
        let report = take.analyzer.clone().finish(&cfg.quality);
        let review = Review {
            accept_failed: true,
            ..Default::default()
        };
        self.ws
            .accept_take(&cfg, &self.contractor, take, &report, &review, &mut |_| {})
            .unwrap()
    }

    fn minter(&self, lifetime: time::Duration) -> Arc<Minter> {
        Arc::new(Minter {
            store: self.store.clone(),
            contractor: self.contractor.clone(),
            lifetime,
            minted: AtomicU32::new(0),
        })
    }

    fn uploader(
        &self,
        endpoint: String,
        source: Arc<dyn CredentialSource>,
        part_mib: u64,
    ) -> Uploader {
        self.uploader_with(endpoint, source, part_mib, 2)
    }

    fn uploader_with(
        &self,
        endpoint: String,
        source: Arc<dyn CredentialSource>,
        part_mib: u64,
        parallel: usize,
    ) -> Uploader {
        let mut cfg = UploadConfig::new(
            Some(endpoint),
            "us-east-1".into(),
            BUCKET.into(),
            KEY.into(),
        );
        cfg.part_size = part_mib * 1024 * 1024;
        cfg.multipart_threshold = cfg.part_size;
        cfg.parallel_parts = parallel;
        Uploader::new(
            cfg,
            CachingProvider::new(source),
            self.ws.outbox.clone(),
            self.ws.audit.clone(),
        )
    }

    fn admin(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.s3.endpoint_url())
            .force_path_style(true)
            .credentials_provider(Credentials::new(ADMIN.0, ADMIN.1, None, None, "test"))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    async fn keys(&self) -> Vec<String> {
        let out = self
            .admin()
            .list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        let mut k: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key.clone())
            .collect();
        k.sort();
        k
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_payloads_then_manifest_with_sse_and_confirmed_checksums() {
    let s = stack().await;
    let item = s.seal(3.0);
    let up = s.uploader(
        s.s3.endpoint_url(),
        s.minter(time::Duration::minutes(15)),
        8,
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
    let got = s
        .admin()
        .get_object()
        .bucket(BUCKET)
        .key(raw_key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
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
    // A second drain has nothing to do.
    assert!(up.drain(&|_| {}).await.unwrap().uploaded.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_upload_never_overwrites_and_is_recorded_as_already_stored() {
    let s = stack().await;
    let item = s.seal(2.0);
    // Keep copies so the "crash before the state was saved" can be replayed.
    let backup = tempfile::tempdir().unwrap();
    for f in ["raw.wav.age", "features.safetensors.age", "state.json"] {
        std::fs::copy(item.dir.join(f), backup.path().join(f)).unwrap();
    }
    let up = s.uploader(
        s.s3.endpoint_url(),
        s.minter(time::Duration::minutes(15)),
        8,
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
    let s = stack().await;
    let item = s.seal(2.0);
    let path = item.dir.join("features.safetensors.age");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let up = s.uploader(
        s.s3.endpoint_url(),
        s.minter(time::Duration::minutes(15)),
        8,
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
    let s = stack().await;
    // 70 s of 48 kHz 16-bit audio: a ~6.7 MB raw payload, two 5 MiB parts.
    let item = s.seal(70.0);
    let raw_size = item.manifest.payloads[0].size;
    assert!(raw_size > 6 * 1024 * 1024, "{raw_size}");
    let proxy = Proxy::start(s.s3.addr()).await;
    // One part at a time, so the first part completes and the cut lands inside the second (the
    // features payload, a single PutObject, goes at the same time as the raw parts).
    let features_size = item.manifest.payloads[1].size;
    let up = s.uploader_with(proxy.url(), s.minter(time::Duration::minutes(15)), 5, 1);
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
    let s = stack().await;
    s.seal(70.0);
    s.seal(70.0);
    let minter = s.minter(time::Duration::seconds(2));
    let up = s.uploader(s.s3.endpoint_url(), minter.clone(), 5);
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
    let s = stack().await;
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
    });
    let up = s.uploader(s.s3.endpoint_url(), Arc::new(broker), 8);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_left_with_sha256_parts_by_the_previous_version_resumes_with_sha256() {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    use voxseal_cloud::object_key::{ObjectKind, object_key};
    use voxseal_core::manifest::PayloadKind;

    let s = stack().await;
    let item = s.seal(70.0); // a ~6.7 MB raw payload: two 5 MiB parts
    let key = object_key(&item.manifest, ObjectKind::Payload(PayloadKind::Raw));
    let bytes = std::fs::read(item.payload_path(PayloadKind::Raw)).unwrap();
    let part1 = &bytes[..5 * 1024 * 1024];
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);

    // What the previous version left: a SHA-256 multipart upload with its first part done, and
    // a state.json in its format (`checksum_sha256`, no `algorithm`).
    let admin = s.admin();
    let created = admin
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(KEY)
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap().to_owned();
    let part = admin
        .upload_part()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&upload_id)
        .part_number(1)
        .checksum_sha256(b64(&Sha256::digest(part1)))
        .body(part1.to_vec().into())
        .send()
        .await
        .unwrap();
    let state_path = item.dir.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["objects"]["raw"] = serde_json::json!({
        "key": key,
        "multipart": {
            "upload_id": upload_id,
            "part_size": 5 * 1024 * 1024,
            "parts": [{
                "number": 1,
                "etag": part.e_tag().unwrap(),
                "checksum_sha256": b64(&Sha256::digest(part1)),
            }],
        },
    });
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();

    let up = s.uploader(
        s.s3.endpoint_url(),
        s.minter(time::Duration::minutes(15)),
        5,
    );
    let report = up.drain(&|_| {}).await.unwrap();
    assert_eq!(report.uploaded.len(), 1, "{report:?}");
    // Confirmed with the COMPOSITE SHA-256 of both parts: part 1 was kept, part 2 was SHA-256.
    let mut outer = Sha256::new();
    for p in bytes.chunks(5 * 1024 * 1024) {
        outer.update(Sha256::digest(p));
    }
    let want = format!("{}-2", b64(&outer.finalize()));
    let done = s.ws.outbox.get(&item.manifest.sample_id).unwrap();
    assert_eq!(
        done.state.objects["raw"].confirmed_checksum.as_deref(),
        Some(want.as_str())
    );
    let head = admin
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(bytes.len() as i64));
    assert_eq!(head.checksum_sha256(), Some(want.as_str()));
}
