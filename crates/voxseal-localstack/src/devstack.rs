//! The embedded local stack: everything a new user needs to try Voxseal without an AWS account.
//!
//! In one process, on 127.0.0.1: the embedded S3 endpoint ([`crate::local_s3`]) and the
//! broker with the local issuer, sharing one [`GrantStore`] so the endpoint enforces exactly the
//! short-lived, prefix-scoped grants the broker mints. A directory holds the bucket's objects, the
//! demo age identities, the enrollment registry, the broker's audit log and a `project.toml`
//! pointing at both servers. Only the endpoint URLs differ from production.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use voxseal_broker::issuer::Target;
use voxseal_broker::ratelimit::RateLimit;
use voxseal_broker::registry::{ContractorStatus, Registry};
use voxseal_broker::{AppState, Settings};
use voxseal_core::project::ids::ContractorId;

use crate::grants::GrantStore;
use crate::issuer::LocalIssuer;
use crate::local_s3::LocalS3;

/// The dev stack's bucket.
pub const BUCKET: &str = "voxseal-dev";
/// The dev stack's region.
pub const REGION: &str = "us-east-1";
/// The KMS key ARN the dev stack's endpoint requires (there is no KMS locally; the endpoint
/// checks uploads name this key, as the session policy does on AWS).
pub const KMS_KEY_ARN: &str = "arn:aws:kms:us-east-1:000000000000:key/voxseal-dev";
/// The demo contractor.
pub const DEMO_CONTRACTOR: &str = "demo-contractor";

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct DevStackOptions {
    /// The state directory (kept between runs).
    pub dir: PathBuf,
    /// Where the S3 endpoint listens (port 0: any free port).
    pub s3_bind: SocketAddr,
    /// Where the broker listens.
    pub broker_bind: SocketAddr,
    /// Lifetime of minted credentials, seconds (STS's 900 by default; tests use seconds).
    pub grant_lifetime_secs: u32,
    /// The demo project's longest take, seconds (`None`: the project default, 120 s).
    pub max_take_s: Option<f64>,
}

impl DevStackOptions {
    /// Defaults: S3 on 127.0.0.1:9000, broker on 127.0.0.1:8787, 900 s grants.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            s3_bind: SocketAddr::from(([127, 0, 0, 1], 9000)),
            broker_bind: SocketAddr::from(([127, 0, 0, 1], 8787)),
            grant_lifetime_secs: 900,
            max_take_s: None,
        }
    }

    /// Both servers on any free port (tests, the desktop app).
    pub fn ephemeral(dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            s3_bind: any,
            broker_bind: any,
            ..Self::new(dir)
        }
    }
}

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevStackError {
    /// File system error in the state directory.
    #[error("dev stack directory {path}: {detail}")]
    Io {
        /// The path.
        path: String,
        /// What failed.
        detail: String,
    },
    /// A server could not start (port in use?).
    #[error(
        "cannot start the {what} on {addr}: {detail} (is another dev stack running? pick other ports)"
    )]
    Bind {
        /// Which server.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What failed.
        detail: String,
    },
    /// The registry could not be used.
    #[error(transparent)]
    Registry(#[from] voxseal_broker::registry::RegistryError),
}

/// What a running stack offers (nothing here is a production secret: the admin key exists only
/// in this local endpoint).
#[derive(Debug, Clone)]
pub struct DevStackInfo {
    /// The S3 endpoint URL.
    pub endpoint: String,
    /// The broker URL.
    pub broker_url: String,
    /// Admin access key id for the local endpoint (setup, reads, the AWS CLI).
    pub admin_access_key: String,
    /// Admin secret for the local endpoint.
    pub admin_secret: String,
    /// The project config pointing at this stack.
    pub project_path: PathBuf,
    /// The demo identities (`training.key`, `archive.key`).
    pub keys_dir: PathBuf,
    /// The enrollment registry.
    pub registry_path: PathBuf,
    /// The stack's project-lead public key (base64), which signed `project.toml`.
    pub lead_pubkey: String,
}

/// A running local stack; stops when dropped.
pub struct DevStack {
    s3: Option<LocalS3>,
    broker_stop: Option<tokio::sync::oneshot::Sender<()>>,
    broker_task: Option<tokio::task::JoinHandle<()>>,
    grants: GrantStore,
    /// Addresses, keys and paths.
    pub info: DevStackInfo,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DevStackError {
    DevStackError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut b = vec![0u8; len];
    getrandom::getrandom(&mut b).expect("OS RNG");
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

/// The admin key pair, created once per directory (mode 0600).
fn admin_keys(dir: &Path) -> Result<(String, String), DevStackError> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Admin {
        access_key: String,
        secret: String,
    }
    let path = dir.join("admin.toml");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let a: Admin = toml::from_str(&text).map_err(|e| io_err(&path, e))?;
        return Ok((a.access_key, a.secret));
    }
    let a = Admin {
        access_key: format!("AKIADEV{}", random_token(13)),
        secret: random_token(40),
    };
    voxseal_core::store::fsutil::write_atomic(
        &path,
        toml::to_string(&a).expect("serializes").as_bytes(),
        true,
    )
    .map_err(|e| io_err(&path, e))?;
    Ok((a.access_key, a.secret))
}

const DEMO_PROMPTS: [(&str, &str); 5] = [
    ("p001", "The quick brown fox jumps over the lazy dog."),
    ("p002", "She sells sea shells by the sea shore."),
    (
        "p003",
        "A journey of a thousand miles begins with a single step.",
    ),
    (
        "p004",
        "Please call Stella and ask her to bring these things with her from the store.",
    ),
    (
        "p005",
        "The early bird catches the worm, but the second mouse gets the cheese.",
    ),
];

fn write_project(
    dir: &Path,
    keys: &Path,
    endpoint: &str,
    broker_url: &str,
    max_take_s: Option<f64>,
) -> Result<PathBuf, DevStackError> {
    let training =
        voxseal_core::sealing::keys::recipients_of_identity_file(&keys.join("training.key"))
            .map_err(|e| io_err(keys, e))?;
    let archive =
        voxseal_core::sealing::keys::recipients_of_identity_file(&keys.join("archive.key"))
            .map_err(|e| io_err(keys, e))?;
    // Rewritten on every start (the ports change): a serial that only grows, valid for 30 days.
    let now = time::OffsetDateTime::now_utc();
    let serial = (now.unix_timestamp_nanos() / 1_000_000) as u64;
    let not_after = voxseal_core::time::format_rfc3339(now + time::Duration::days(30));
    let mut text = format!(
        "# Written by the Voxseal dev stack on every start: points at its local servers.\n\
         [project]\nname = \"voxseal-dev\"\nserial = {serial}\nnot_after = \"{not_after}\"\n\
         consent_text = \"This is a local demo. Your recordings stay on this computer, encrypted; nothing is sent anywhere.\"\n\n\
         [recipients]\ntraining = {training:?}\narchive = {archive:?}\n\n\
         [storage]\nbucket = \"{BUCKET}\"\nregion = \"{REGION}\"\nendpoint = \"{endpoint}\"\n\
         kms_key_arn = \"{KMS_KEY_ARN}\"\nbroker_url = \"{broker_url}\"\n"
    );
    if let Some(max) = max_take_s {
        text.push_str(&format!("\n[capture]\nmax_take_s = {max:?}\n"));
    }
    for (id, prompt) in DEMO_PROMPTS {
        text.push_str(&format!(
            "\n[[prompts]]\nid = \"{id}\"\ntext = \"{prompt}\"\n"
        ));
    }
    let path = dir.join("project.toml");
    voxseal_core::project::config::ProjectConfig::parse(&text, "dev stack project.toml")
        .map_err(|e| io_err(&path, e))?;
    // Signed with the stack's own lead key, so the same verification path runs as in production.
    let sig = voxseal_core::project::signing::sign(
        &keys.join("lead.key"),
        None,
        text.as_bytes(),
        "voxseal dev stack project config",
    )
    .map_err(|e| io_err(&path, e))?;
    voxseal_core::store::fsutil::write_atomic(
        &voxseal_core::project::signing::sig_path(&path),
        sig.as_bytes(),
        false,
    )
    .map_err(|e| io_err(&path, e))?;
    voxseal_core::store::fsutil::write_atomic(&path, text.as_bytes(), false)
        .map_err(|e| io_err(&path, e))?;
    Ok(path)
}

impl DevStack {
    /// Starts both servers on the current tokio runtime, creating the directory, keys, bucket and
    /// project config on first use.
    pub async fn start(opts: DevStackOptions) -> Result<Self, DevStackError> {
        let dir = &opts.dir;
        voxseal_core::store::fsutil::create_private_dir(dir).map_err(|e| io_err(dir, e))?;
        let keys = dir.join("keys");
        voxseal_core::store::fsutil::create_private_dir(&keys).map_err(|e| io_err(&keys, e))?;
        for (file, label) in [
            ("training.key", "dev stack training identity"),
            ("archive.key", "dev stack archive identity"),
        ] {
            let p = keys.join(file);
            if !p.exists() {
                voxseal_core::sealing::keys::generate_identity_file(&p, label)
                    .map_err(|e| io_err(&p, e))?;
            }
        }
        let (lead_key, lead_pub) = (keys.join("lead.key"), keys.join("lead.pub"));
        if !lead_key.exists() {
            voxseal_core::project::signing::generate_lead_key(&lead_key, &lead_pub, None)
                .map_err(|e| io_err(&lead_key, e))?;
        }
        let lead_pubkey = voxseal_core::project::signing::public_key_from_text(
            &std::fs::read_to_string(&lead_pub).map_err(|e| io_err(&lead_pub, e))?,
        )
        .map_err(|e| io_err(&lead_pub, e))?;
        let (admin_access_key, admin_secret) = admin_keys(dir)?;
        let grants = GrantStore::new();
        grants.add_admin(&admin_access_key, &admin_secret);

        let s3 = LocalS3::start(&dir.join("s3"), grants.clone(), opts.s3_bind)
            .await
            .map_err(|e| DevStackError::Bind {
                what: "S3 endpoint",
                addr: opts.s3_bind,
                detail: e.to_string(),
            })?;
        s3.create_bucket(BUCKET)
            .map_err(|e| io_err(&dir.join("s3"), e))?;

        let target =
            Target::new(BUCKET, REGION, KMS_KEY_ARN).expect("the dev stack's target is valid");
        let issuer = LocalIssuer::new(grants.clone(), target, opts.grant_lifetime_secs)
            .map_err(|e| io_err(dir, e))?;
        let settings = Settings {
            registry: dir.join("registry.toml"),
            audit_log: dir.join("broker-audit.log"),
            rate_limit: RateLimit::default(),
            max_body_bytes: 4096,
            project: Some(dir.join("project.toml")),
        };
        let state = AppState::new(settings, Arc::new(issuer));
        let listener = tokio::net::TcpListener::bind(opts.broker_bind)
            .await
            .map_err(|e| DevStackError::Bind {
                what: "broker",
                addr: opts.broker_bind,
                detail: e.to_string(),
            })?;
        let broker_addr = listener.local_addr().map_err(|e| io_err(dir, e))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            voxseal_broker::serve::serve(listener, state, Default::default(), async {
                let _ = stop_rx.await;
            })
            .await;
        });

        let endpoint = s3.endpoint_url();
        let broker_url = format!("http://{broker_addr}");
        let project_path = write_project(dir, &keys, &endpoint, &broker_url, opts.max_take_s)?;
        Ok(Self {
            s3: Some(s3),
            broker_stop: Some(stop_tx),
            broker_task: Some(task),
            grants,
            info: DevStackInfo {
                endpoint,
                broker_url,
                admin_access_key,
                admin_secret,
                project_path,
                keys_dir: keys,
                registry_path: dir.join("registry.toml"),
                lead_pubkey,
            },
        })
    }

    /// A fresh one-time enrollment code for `contractor` (added to the registry if new;
    /// re-admitted with a new code if it was enrolled or revoked before).
    pub fn enrollment_code(&self, contractor: &ContractorId) -> Result<String, DevStackError> {
        let mut reg = Registry::load(&self.info.registry_path)?;
        if reg
            .get(contractor)
            .is_some_and(|c| c.status != ContractorStatus::Revoked)
        {
            reg.revoke(contractor)?;
            self.grants.revoke(contractor);
        }
        let code = reg.add(
            contractor.clone(),
            voxseal_broker::registry::DEFAULT_CODE_TTL,
        )?;
        reg.save()?;
        Ok(code.expose_secret().to_owned())
    }

    /// The grant store shared by the broker and the endpoint.
    pub fn grants(&self) -> &GrantStore {
        &self.grants
    }

    /// Stops both servers and waits for them.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.broker_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.broker_task.take() {
            let _ = t.await;
        }
        if let Some(s3) = self.s3.take() {
            s3.shutdown().await;
        }
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        if let Some(tx) = self.broker_stop.take() {
            let _ = tx.send(());
        }
    }
}
