//! Shared pieces of Voxseal's reliability tests (`tests/reliability/tests/*.rs`; the crate is test
//! support only and publishes nothing).
//!
//! - [`Stack`]: a data directory with a project, the embedded S3 endpoint on 127.0.0.1 and a grant
//!   minter, for driving the real uploader.
//! - [`Tmpfs`]: a small tmpfs mount, to fill a disk for real (needs root; tests skip without it).
//! - [`StandIn`]: a tiny HTTP server that answers every request the same way and counts them, to
//!   play a broker or S3 endpoint that misbehaves (clock skew, wrong checksums).
//!
//! ```no_run
//! # async fn f() {
//! let s = voxseal_reliability::Stack::new().await;
//! let item = s.seal(1.0);
//! assert!(item.dir.join("manifest.json").exists());
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use sha2::{Digest, Sha256};
use voxseal_cloud::provider::{CachingProvider, CredentialFuture, CredentialSource};
use voxseal_cloud::uploader::{UploadConfig, Uploader};
use voxseal_core::capture::audio::SourceFactory;
use voxseal_core::capture::audio::{AudioSource, SyntheticKind, SyntheticSource};
use voxseal_core::capture::recorder::{RecordedTake, RecorderOptions, Recording};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::ids::ContractorId;
use voxseal_core::store::outbox::OutboxItem;
use voxseal_core::store::take::{Acceptance, TakeInReview};
use voxseal_core::store::workspace::Workspace;
use voxseal_localstack::grants::GrantStore;
use voxseal_localstack::local_s3::LocalS3;

/// The test bucket.
pub const BUCKET: &str = "voxseal-test";
/// The KMS key the endpoint expects.
pub const KEY: &str = "arn:aws:kms:us-east-1:000000000000:key/voxseal-test";
/// The endpoint's admin key pair.
pub const ADMIN: (&str, &str) = ("ADMINKEY", "ADMINSECRET0123456789");
/// MiB.
pub const MIB: u64 = 1024 * 1024;

/// Mints grants as the broker's local issuer does, counting how often. `claimed` makes the
/// credentials say they live longer than the endpoint will honour them (a client clock that is
/// behind, a grant cut short on the server side).
#[derive(Debug)]
pub struct Minter {
    store: GrantStore,
    contractor: ContractorId,
    lifetime: time::Duration,
    claimed: Option<time::Duration>,
    /// Grants minted so far.
    pub minted: AtomicU32,
}

impl CredentialSource for Minter {
    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(async move {
            self.minted.fetch_add(1, Ordering::SeqCst);
            let mut c = self
                .store
                .mint(&self.contractor, BUCKET, "us-east-1", KEY, self.lifetime);
            if let Some(claimed) = self.claimed {
                c.expiration = time::OffsetDateTime::now_utc() + claimed;
            }
            Ok(c)
        })
    }
}

/// A data directory with a signed-off project, an embedded S3 endpoint and a grant store.
pub struct Stack {
    /// Holds everything.
    pub dir: tempfile::TempDir,
    /// The data directory.
    pub ws: Workspace,
    /// The project (no trimming, so takes seal whole).
    pub config: ProjectConfig,
    /// The endpoint (None while "restarting").
    pub s3: Option<LocalS3>,
    /// Grants shared by the minter and the endpoint.
    pub store: GrantStore,
    /// Who records.
    pub contractor: ContractorId,
}

impl Stack {
    /// A fresh stack in a temporary directory.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::in_dir(dir).await
    }

    /// A fresh stack whose data directory lives in `dir` (a tmpfs, say).
    pub async fn in_dir(dir: tempfile::TempDir) -> Self {
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
            voxseal_core::sealing::keys::generate_identity_file(&dir.path().join("t.key"), "t")
                .unwrap();
        let archive =
            voxseal_core::sealing::keys::generate_identity_file(&dir.path().join("a.key"), "a")
                .unwrap();
        // Installed and signed, as sealing records the installed config's SHA-256.
        let text = format!(
            "[project]\nname = \"reliability\"\n[recipients]\ntraining = [\"{training}\"]\n\
             archive = [\"{archive}\"]\n[capture]\nmax_take_s = 600\ntrim_silence = false\n"
        );
        let config = ProjectConfig::parse(&text, "test").unwrap();
        let (mut ws, _) = Workspace::open(&dir.path().join("data")).unwrap();
        let (key, project) = (dir.path().join("lead.key"), dir.path().join("project.toml"));
        let lead = voxseal_core::project::signing::generate_lead_key(
            &key,
            &dir.path().join("lead.pub"),
            None,
        )
        .unwrap();
        let sig =
            voxseal_core::project::signing::sign(&key, None, text.as_bytes(), "test").unwrap();
        std::fs::write(&project, &text).unwrap();
        std::fs::write(voxseal_core::project::signing::sig_path(&project), sig).unwrap();
        ws.trust(lead);
        ws.install_project(&project).unwrap();
        Self {
            dir,
            ws,
            config,
            s3: Some(s3),
            store,
            contractor: "alice-01".parse().unwrap(),
        }
    }

    /// The endpoint's URL.
    pub fn endpoint(&self) -> String {
        self.s3
            .as_ref()
            .expect("the endpoint is running")
            .endpoint_url()
    }

    /// Records `seconds` of synthetic speech (as fast as possible) into the spool.
    pub fn record(&self, seconds: f64) -> RecordedTake {
        let factory: SourceFactory = Box::new(move || {
            Ok(Box::new(SyntheticSource::new(
                SyntheticKind::Speech,
                48_000,
                Some(seconds),
            )) as Box<dyn AudioSource>)
        });
        Recording::start(factory, RecorderOptions::new(self.ws.spool_dir()), |_| {})
            .unwrap()
            .wait()
            .unwrap()
    }

    /// Puts a recorded take under review.
    pub fn review(&self, take: RecordedTake) -> TakeInReview {
        self.ws.review_take(take, None, &self.config).unwrap()
    }

    /// Accepts a take into the outbox (even if a quality check fails).
    pub fn accept(
        &self,
        take: TakeInReview,
    ) -> Result<OutboxItem, Box<voxseal_core::store::take::AcceptRefused>> {
        let acceptance = Acceptance {
            despite_failed_checks: true,
            ..Default::default()
        };
        take.accept(
            &self.ws,
            &self.config,
            &self.contractor,
            &acceptance,
            &mut |_| {},
        )
    }

    /// Records and seals `seconds` of synthetic speech.
    pub fn seal(&self, seconds: f64) -> OutboxItem {
        self.accept(self.review(self.record(seconds)))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A sealed item whose raw payload is `raw_bytes` of random data sealed to the archive
    /// recipients (the manifest's size and hash updated to match): a multi-part upload without
    /// recording minutes of audio in an unoptimized test build. The uploader never looks inside.
    pub fn big_item(&self, raw_bytes: usize) -> OutboxItem {
        let mut item = self.seal(0.5);
        let path = item.dir.join("raw.wav.age");
        std::fs::remove_file(&path).unwrap();
        let mut noise = vec![0u8; raw_bytes];
        let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ raw_bytes as u64;
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let ((), sealed) = voxseal_core::sealing::seal::seal_to_file(
            &path,
            &self.config.archive_recipients(),
            |w| w.write_all(&noise),
        )
        .unwrap();
        let raw = item
            .manifest
            .payloads
            .iter_mut()
            .find(|p| p.kind == voxseal_core::project::manifest::PayloadKind::Raw)
            .unwrap();
        raw.size = sealed.size;
        raw.sha256 = sealed.sha256;
        voxseal_core::store::fsutil::write_json_atomic(
            &item.dir.join("manifest.json"),
            &item.manifest,
        )
        .unwrap();
        item
    }

    /// A new outbox item shaped like `template` (a really sealed one): a new sample and take id,
    /// and new payloads of the same sizes (random bytes sealed with age to the same recipients,
    /// so new hashes and new object keys), committed through the outbox's staging and logged
    /// like a seal.
    /// Fills an upload queue in seconds where sealing a thousand takes in a debug build takes
    /// minutes; the uploader only reads the manifest and the ciphertext.
    pub fn resealed(&self, template: &OutboxItem) -> OutboxItem {
        use voxseal_core::project::manifest::PayloadKind;
        let mut manifest = template.manifest.clone();
        manifest.sample_id = voxseal_core::project::ids::SampleId::generate();
        manifest.take_id = voxseal_core::project::ids::TakeId::generate();
        manifest.sealed_at = voxseal_core::time::now_rfc3339();
        let staging = self.ws.outbox.staging(&manifest.sample_id).unwrap();
        let id = manifest.sample_id.as_str();
        let mut seed = u64::from_str_radix(&id[id.len() - 16..], 16).unwrap() | 1;
        for p in manifest.payloads.iter_mut() {
            let recipients = match p.kind {
                PayloadKind::Raw => self.config.archive_recipients(),
                PayloadKind::Features => self.config.training_recipients(),
            };
            let plain: Vec<u8> = (0..p.size.saturating_sub(200))
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let ((), sealed) = voxseal_core::sealing::seal::seal_to_file(
                &staging.path(&p.file),
                &recipients,
                |w| w.write_all(&plain),
            )
            .unwrap();
            p.size = sealed.size;
            p.sha256 = sealed.sha256;
        }
        voxseal_core::store::fsutil::write_json_atomic(
            &staging.path(voxseal_core::store::outbox::MANIFEST_FILE),
            &manifest,
        )
        .unwrap();
        let state = voxseal_core::store::outbox::ItemState::sealed();
        voxseal_core::store::fsutil::write_json_atomic(
            &staging.path(voxseal_core::store::outbox::STATE_FILE),
            &state,
        )
        .unwrap();
        let dir = staging.commit().unwrap().dir;
        let sealed = voxseal_core::store::audit::AuditEvent::take_sealed(&manifest, false);
        self.ws.audit.append(&sealed).unwrap();
        OutboxItem {
            dir,
            manifest,
            state,
        }
    }

    /// A minter of grants that live `lifetime`.
    pub fn minter(&self, lifetime: time::Duration) -> Arc<Minter> {
        self.minter_claiming(lifetime, None)
    }

    /// A minter whose grants live `lifetime` on the endpoint but claim to live `claimed`.
    pub fn minter_claiming(
        &self,
        lifetime: time::Duration,
        claimed: Option<time::Duration>,
    ) -> Arc<Minter> {
        Arc::new(Minter {
            store: self.store.clone(),
            contractor: self.contractor.clone(),
            lifetime,
            claimed,
            minted: AtomicU32::new(0),
        })
    }

    /// An uploader to `endpoint` with `part` parts (also the multipart threshold), `parallel`
    /// at a time.
    pub fn uploader(
        &self,
        endpoint: String,
        source: Arc<dyn CredentialSource>,
        part: u64,
        parallel: usize,
    ) -> Uploader {
        let mut cfg = UploadConfig::new(
            Some(endpoint),
            "us-east-1".into(),
            BUCKET.into(),
            KEY.into(),
        );
        cfg.part_size = part;
        cfg.multipart_threshold = part;
        cfg.parallel_parts = parallel;
        Uploader::new(
            cfg,
            CachingProvider::new(source),
            self.ws.outbox.clone(),
            self.ws.audit.clone(),
        )
    }

    /// An S3 client with the endpoint's admin key.
    pub fn admin(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new(ADMIN.0, ADMIN.1, None, None, "test"))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Every sample object's key in the bucket, sorted (audit checkpoints, which every drain
    /// that uploads adds, are left out: [`Stack::checkpoint_keys`]).
    pub async fn keys(&self) -> Vec<String> {
        let mut keys = self.all_keys().await;
        keys.retain(|k| !is_checkpoint(k));
        keys
    }

    /// The keys of the audit checkpoints in the bucket, sorted (oldest head first).
    pub async fn checkpoint_keys(&self) -> Vec<String> {
        let mut keys = self.all_keys().await;
        keys.retain(|k| is_checkpoint(k));
        keys
    }

    /// Every key in the bucket, sorted, as the admin lists it (all pages).
    pub async fn all_keys(&self) -> Vec<String> {
        let admin = self.admin();
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = admin
                .list_objects_v2()
                .bucket(BUCKET)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            out.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        out.sort();
        out
    }

    /// An object's content, as the admin reads it.
    pub async fn get(&self, key: &str) -> Vec<u8> {
        self.admin()
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec()
    }

    /// Every object in the bucket with the SHA-256 (hex) of its content, as the admin reads it.
    pub async fn objects(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for key in self.keys().await {
            let body = self.get(&key).await;
            out.insert(key, sha256_hex(&body));
        }
        out
    }

    /// The keys an item's objects must have, with the SHA-256 of what was sealed.
    pub fn expected_objects(item: &OutboxItem) -> BTreeMap<String, String> {
        use voxseal_cloud::object_key::{ObjectKind, object_key};
        let mut out = BTreeMap::new();
        for p in &item.manifest.payloads {
            out.insert(
                object_key(&item.manifest, ObjectKind::Payload(p.kind)),
                p.sha256.clone(),
            );
        }
        let manifest = std::fs::read(item.dir.join("manifest.json")).unwrap();
        out.insert(
            object_key(&item.manifest, ObjectKind::Manifest),
            sha256_hex(&manifest),
        );
        out
    }
}

fn is_checkpoint(key: &str) -> bool {
    voxseal_core::store::key_layout::is_checkpoint(Path::new(key))
}

/// SHA-256, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A tmpfs mounted on a fresh temporary directory; unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a `size_kib` KiB tmpfs, or says why not (mounting needs root) and returns `None`.
    pub fn mount(size_kib: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_kib}k,mode=0700"))
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs here ({}); the disk-full tests need root",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free for an unprivileged writer (`stat -f`).
    pub fn free(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(self.path())
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let mut it = text.split_whitespace().map(|x| x.parse::<u64>().unwrap());
        it.next().unwrap() * it.next().unwrap()
    }

    /// Fills the file system until only about `leave` bytes are free; returns the filler's path.
    pub fn fill(&self, leave: u64) -> PathBuf {
        let path = self.path().join(format!("filler-{}", self.free()));
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while self.free() > leave {
            let want = (self.free() - leave).min(1 << 20) as usize;
            let mut left = want.div_ceil(4096);
            while left > 0 {
                if f.write_all(&block).is_err() {
                    return path;
                }
                left -= 1;
            }
            let _ = f.sync_all();
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A one-answer HTTP server on 127.0.0.1 that counts the requests it gets.
pub struct StandIn {
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Requests so far.
    pub hits: Arc<AtomicU32>,
    /// When each request arrived.
    pub times: Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Serves `answer(method, path)` for every request.
    pub async fn start(
        answer: impl Fn(&axum::http::Method, &str) -> axum::response::Response
        + Clone
        + Send
        + Sync
        + 'static,
    ) -> Self {
        let hits = Arc::new(AtomicU32::new(0));
        let times = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, arrivals) = (hits.clone(), times.clone());
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let answer = answer.clone();
            let (counter, arrivals) = (counter.clone(), arrivals.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                arrivals.lock().unwrap().push(std::time::Instant::now());
                // Read the whole body, as a real server would, before answering.
                let method = req.method().clone();
                let path = req.uri().path().to_owned();
                let _ = axum::body::to_bytes(req.into_body(), 64 * MIB as usize).await;
                answer(&method, &path)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            hits,
            times,
            task,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests so far.
    pub fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP date (RFC 7231 IMF-fixdate) `offset` away from now.
pub fn http_date(offset: time::Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + offset;
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).unwrap()
}
