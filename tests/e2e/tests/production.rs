//! The production path with the real binaries in their real roles, against moto (STS, IAM, S3,
//! KMS) on 127.0.0.1 with IAM enforcement on:
//!
//! 1. the lead runs `voxseal project init` with a real bucket, KMS key and broker URL;
//! 2. the `voxseal-broker` binary runs as its own process with its STS issuer (real AssumeRole
//!    with the session policy; the role's identity policy mirrors deploy/aws's upload role);
//! 3. the lead runs `voxseal enroll add`;
//! 4. a contractor's `voxseal` (a data directory that never ran `init`) joins with the link: the
//!    broker serves the lead-signed config, verified before the code is used; records two takes
//!    and uploads them with STS sessions from the broker;
//! 5. the bucket holds exactly the expected objects, SSE-KMS under the project key (AWS CLI); Go
//!    `age` with the training key opens the features, the archive key the raw audio;
//! 6. the lead signs a newer config: installed on the next broker contact; an older one offered
//!    by the broker is refused;
//! 7. `voxseal enroll revoke`: the next upload is refused and nothing is lost from the queue.
//!
//! `lead_broker_and_contractor_on_the_production_path` plays the contractor with the CLI (QA's
//! headless path); in `contractor_app_on_the_production_path` the contractor is the desktop app
//! as released: built with the lead key pinned and without the demo (`scripts/test.sh` builds it
//! as `$CARGO_TARGET_DIR/e2e/voxseal-desktop-pinned` with the key of `$CARGO_TARGET_DIR/e2e-lead`),
//! driven through WebDriver under Xvfb with speech played into PulseAudio. The app gets its link
//! from a second launch of the binary (as a browser opens it), and after the revocation it is
//! restarted: still in the project, the same queue, the revocation shown again; then the lead
//! re-admits the contractor, and the new link, handed to the enrolled app, uploads the kept take.
//! Both cover the
//! update, the replay and the revocation. Properties moto does
//! not enforce (session policy, expiry, checksums) are tested elsewhere (docs/reliability.md).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use voxseal_e2e::e2e_lead;
use voxseal_testkit::{MotoServer, require_tool};

const BUCKET: &str = "acme-voices-prod";
const ROLE: &str = "voxseal-contractor-upload";
const CONTRACTOR: &str = "alice-01";
/// The first prompt, in Arabic script (right to left): rendered, spoken and recorded like any.
const ARABIC_PROMPT: &str = "ذهب الولد إلى المدرسة في الصباح الباكر.";

fn bin(name: &str) -> PathBuf {
    let p = voxseal_e2e::target_dir().join("debug").join(name);
    assert!(
        p.is_file(),
        "{} is missing: build it with `cargo build -p voxseal-cli -p voxseal-broker` (scripts/test.sh does)",
        p.display()
    );
    p
}

#[track_caller]
fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bucket, its KMS key, and the upload role (identity policy as in deploy/aws: PutObject and
/// the multipart actions on the three prefixes). Returns (role ARN, KMS key ARN).
fn aws_side(moto: &MotoServer) -> (String, String) {
    let key = moto.aws_ok(&["kms", "create-key", "--description", "voxseal project key"]);
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    moto.aws_ok(&["s3api", "create-bucket", "--bucket", BUCKET]);
    let role = moto.create_assumable_role(ROLE);
    let prefixes: Vec<String> = ["raw", "features", "manifests"]
        .iter()
        .map(|p| format!("arn:aws:s3:::{BUCKET}/{p}/*"))
        .collect();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": prefixes,
        }],
    })
    .to_string();
    moto.aws_ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        ROLE,
        "--policy-name",
        "upload",
        "--policy-document",
        &policy,
    ]);
    (role, key_arn)
}

/// The `voxseal-broker` binary with its STS issuer against moto; killed on drop.
struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker(moto: &MotoServer, dir: &Path, role: &str, kms: &str, project: &Path) -> Broker {
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:0\"\nregistry = \"registry.toml\"\naudit_log = \"broker-audit.log\"\n\
             bucket = \"{BUCKET}\"\nregion = \"{}\"\nkms_key_arn = \"{kms}\"\nrole_arn = \"{role}\"\n\
             issuer = \"sts\"\nduration_secs = 900\nsts_endpoint = \"{}\"\nproject = \"{}\"\n",
            MotoServer::REGION,
            moto.endpoint_url(),
            project.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(bin("voxseal-broker"));
    cmd.arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    for (k, v) in moto.admin_credentials().env(MotoServer::REGION) {
        cmd.env(k, v);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("VOXSEAL_BROKER_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("starting voxseal-broker");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["fields"]["message"] == "listening"
            {
                let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the broker did not start");
    Broker {
        child,
        url: format!("http://{addr}"),
    }
}

/// `voxseal` as the lead (no data directory of its own).
fn lead(work: &Path, args: &[&str]) -> String {
    let out = Command::new(bin("voxseal"))
        .args(args)
        .env("VOXSEAL_DATA_DIR", work.join("lead-data"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(out, &format!("lead: voxseal {args:?}"))
}

/// `voxseal` as the contractor: its own data directory, a file token store. This development
/// build pins no lead key, so the lead's public key is trusted from outside the data directory.
fn contractor(work: &Path, project: &Path, args: &[&str]) -> Output {
    Command::new(bin("voxseal"))
        .args(args)
        .env("VOXSEAL_DATA_DIR", work.join("contractor"))
        .env("VOXSEAL_TRUST_LEAD_KEY", project.join("lead.pub"))
        .env("VOXSEAL_TOKEN_STORE", "file")
        .env("VOXSEAL_TOKEN_PASSPHRASE", "contractor passphrase")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A 4-second take of synthetic speech for `prompt`, accepted.
fn record(work: &Path, project: &Path, prompt: &str) -> Output {
    let args = [
        "record",
        "--source",
        "synthetic:speech",
        "--fast",
        "--seconds",
        "4",
        "--prompt",
        prompt,
        "--accept",
    ];
    contractor(work, project, &args)
}

fn resign(project: &Path, serial: u64) {
    let path = project.join("project.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| l.starts_with("serial = ")).unwrap();
    std::fs::write(&path, text.replace(line, &format!("serial = {serial}"))).unwrap();
}

/// The bucket's sample objects (raw, features, manifests), without the audit checkpoints.
fn sample_objects(moto: &MotoServer) -> Vec<String> {
    let mut keys = objects(moto);
    keys.retain(|k| !k.ends_with(".checkpoint"));
    keys
}

fn objects(moto: &MotoServer) -> Vec<String> {
    let listing = moto.aws_ok(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    let mut keys: Vec<String> = listing["Contents"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["Key"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

#[test]
fn lead_broker_and_contractor_on_the_production_path() {
    let Some(age) = require_tool("age") else {
        return;
    };
    let Some(st) = production_stack(None) else {
        return;
    };
    let (moto, work, project, link) = (&st.moto, st.work.path(), &st.project, &st.link);
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    // The contractor joins with nothing but the link.
    let consent = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        "I agree to be recorded for Acme.".as_bytes(),
    ));
    let joined = contractor(
        work,
        project,
        &["enroll", "join", link, "--accept-consent", &consent[..16]],
    );
    let err = String::from_utf8_lossy(&joined.stderr).into_owned();
    ok(joined, "contractor: enroll join");
    assert!(err.contains("project acme-voices"), "{err}");
    assert!(err.contains("I agree to be recorded for Acme."), "{err}");
    for prompt in ["p0001", "p0002"] {
        ok(record(work, project, prompt), "contractor: record");
    }
    ok(contractor(work, project, &["upload"]), "contractor: upload");

    check_bucket(&st, 6, &age);
    let keys = objects(moto);
    for kind in ["raw/", "features/", "manifests/"] {
        let prefix = format!("{kind}{CONTRACTOR}/");
        assert_eq!(
            keys.iter()
                .filter(|k| k.starts_with(&prefix) && !k.ends_with(".checkpoint"))
                .count(),
            2,
            "{keys:#?}"
        );
    }
    let raw = keys.iter().find(|k| k.starts_with("raw/")).unwrap();
    let file = work.join("fetched-raw.age");
    moto.aws_ok(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        raw,
        &s(&file),
    ]);
    let wav = voxseal_testkit::age_decrypt(&age, &project.join("keys/archive.key"), &file)
        .unwrap_or_else(|e| panic!("age -d {raw}: {e}"));
    assert_eq!(&wav[..4], b"RIFF", "{raw}: the archive key opens a WAV");

    // A newer config is installed on the next broker contact; an older one is refused.
    let saved = st.signed_config();
    // Each upload below has a new take to send, so it contacts the broker.
    let record_and_upload = |prompt: &str| {
        ok(record(work, project, prompt), "contractor: record");
        contractor(work, project, &["upload"])
    };
    st.sign(2);
    let up = record_and_upload("p0001");
    let err = String::from_utf8_lossy(&up.stderr).into_owned();
    ok(up, "contractor: upload after the update");
    assert!(err.contains("settings version 1 -> 2"), "{err}");
    for (path, bytes) in &saved {
        std::fs::write(path, bytes).unwrap();
    }
    let up = record_and_upload("p0002");
    let err = String::from_utf8_lossy(&up.stderr).into_owned();
    ok(up, "contractor: upload with an old config offered");
    assert!(err.contains("refused") && err.contains("older"), "{err}");
    let installed = std::fs::read_to_string(work.join("contractor/project.toml")).unwrap();
    assert!(installed.contains("serial = 2"), "{installed}");
    assert_eq!(sample_objects(moto).len(), 12);

    // Revoked: the broker refuses, the contractor is told, and the new take stays queued.
    st.revoke();
    let up = record_and_upload("p0001");
    let err = String::from_utf8_lossy(&up.stderr).to_lowercase();
    assert!(!up.status.success(), "upload after revocation succeeded");
    assert!(err.contains("revoked"), "{err}");
    let outbox = ok(contractor(work, project, &["outbox"]), "contractor: outbox");
    assert!(outbox.contains("sealed"), "{outbox}");
    assert_eq!(
        sample_objects(moto).len(),
        12,
        "nothing more reached the bucket"
    );
}

/// moto, the bucket, the broker and the lead's project: what both contractors join.
struct Stack {
    moto: MotoServer,
    work: tempfile::TempDir,
    project: PathBuf,
    broker: Broker,
    kms: String,
    link: String,
    /// The lead's signing key (`keys/lead.key` of the project, or the pinned build's).
    lead_key: PathBuf,
}

impl Stack {
    /// The lead re-signs the project config with `serial`; the broker serves it from now on.
    fn sign(&self, serial: u64) {
        resign(&self.project, serial);
        let s = |p: &Path| p.to_str().unwrap().to_owned();
        lead(
            self.work.path(),
            &[
                "project",
                "sign",
                &s(&self.project.join("project.toml")),
                "--key",
                &s(&self.lead_key),
            ],
        );
    }

    /// The config and signature as they are now (to offer them again later: a replay).
    fn signed_config(&self) -> [(PathBuf, Vec<u8>); 2] {
        ["project.toml", "project.toml.sig"].map(|f| {
            let path = self.project.join(f);
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
    }

    /// The lead revokes the contractor (the registry the broker reads).
    fn revoke(&self) {
        let registry = self.work.path().join("registry.toml");
        lead(
            self.work.path(),
            &[
                "enroll",
                "revoke",
                CONTRACTOR,
                "--registry",
                registry.to_str().unwrap(),
            ],
        );
    }
}

/// The lead runs `voxseal enroll add` (also to re-admit a revoked contractor): the link.
fn enroll_add(work: &Path, broker: &str) -> String {
    let registry = work.join("registry.toml");
    let out = lead(
        work,
        &[
            "enroll",
            "add",
            CONTRACTOR,
            "--registry",
            registry.to_str().unwrap(),
            "--broker",
            broker,
        ],
    );
    out.lines()
        .find(|l| l.starts_with("voxseal://enroll?"))
        .unwrap_or_else(|| panic!("no link in: {out}"))
        .to_owned()
}

fn production_stack(lead_key: Option<&Path>) -> Option<Stack> {
    let moto = require_tool("aws").and_then(|_| MotoServer::try_start())?;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let project = dir.join("acme");
    let (role, kms) = aws_side(&moto);
    // The broker first (its port goes into the config); it reads the config on each request.
    let broker = start_broker(&moto, dir, &role, &kms, &project.join("project.toml"));
    std::fs::write(
        dir.join("prompts.txt"),
        format!("{ARABIC_PROMPT}\nSecond sentence.\nThird sentence.\nFourth sentence.\nFifth sentence.\n"),
    )
    .unwrap();
    std::fs::write(dir.join("consent.txt"), "I agree to be recorded for Acme.").unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let mut args = vec![
        "project".to_owned(),
        "init".into(),
        s(&project),
        "--name".into(),
        "acme-voices".into(),
        "--prompts".into(),
        s(&dir.join("prompts.txt")),
        "--consent".into(),
        s(&dir.join("consent.txt")),
        "--bucket".into(),
        BUCKET.into(),
        "--region".into(),
        MotoServer::REGION.into(),
        "--kms-key-arn".into(),
        kms.clone(),
        "--broker-url".into(),
        broker.url.clone(),
        "--endpoint".into(),
        moto.endpoint_url(),
        "--no-password".into(),
    ];
    if let Some(lead) = lead_key {
        args.extend([
            "--lead-key".into(),
            s(&lead.join("keys/lead.key")),
            "--lead-pub".into(),
            s(&lead.join("lead.pub")),
        ]);
    }
    lead(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let link = enroll_add(dir, &broker.url);
    let lead_key = match lead_key {
        Some(lead) => lead.join("keys/lead.key"),
        None => project.join("keys/lead.key"),
    };
    Some(Stack {
        moto,
        work,
        project,
        broker,
        kms,
        link,
        lead_key,
    })
}

/// Every object is SSE-KMS under the project key; the training key opens the features.
fn check_bucket(st: &Stack, expected: usize, age: &Path) {
    // Sample objects, and the audit checkpoints each upload run that stored items adds.
    let (checkpoints, keys): (Vec<String>, Vec<String>) = objects(&st.moto)
        .into_iter()
        .partition(|k| k.ends_with(".checkpoint"));
    assert_eq!(keys.len(), expected, "{keys:#?}");
    assert!(
        checkpoints
            .iter()
            .all(|k| k.starts_with(&format!("manifests/{CONTRACTOR}/audit/"))),
        "{checkpoints:#?}"
    );
    assert!(!checkpoints.is_empty(), "no audit checkpoint: {keys:#?}");
    for key in keys.iter().chain(&checkpoints) {
        assert!(key.contains(&format!("/{CONTRACTOR}/")), "{key}");
        let head = st
            .moto
            .aws_ok(&["s3api", "head-object", "--bucket", BUCKET, "--key", key]);
        assert_eq!(head["ServerSideEncryption"], "aws:kms", "{key}: {head}");
        assert_eq!(head["SSEKMSKeyId"].as_str(), Some(st.kms.as_str()), "{key}");
    }
    let key = keys.iter().find(|k| k.starts_with("features/")).unwrap();
    let file = st.work.path().join("fetched-features.age");
    st.moto.aws_ok(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        key,
        file.to_str().unwrap(),
    ]);
    let plain = voxseal_testkit::age_decrypt(age, &st.project.join("keys/training.key"), &file)
        .unwrap_or_else(|e| panic!("age -d {key}: {e}"));
    assert_eq!(&plain[8..10], b"{\"", "{key}: not safetensors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contractor_app_on_the_production_path() {
    use anyhow::{Context as _, ensure};
    use voxseal_e2e::steps::{
        LONG, SHORT, arabic_text, choose_language, header_kept_its_height, mic_check, watch_header,
    };
    use voxseal_e2e::{Desktop, Tools};

    let Some(mut tools) = Tools::find("contractor_app_on_the_production_path") else {
        return;
    };
    let test = "contractor_app_on_the_production_path";
    let Some(app) = voxseal_e2e::pinned_app(test, &[e2e_lead().join("keys/lead.key")]) else {
        return;
    };
    tools.app = app;
    let Some(age) = require_tool("age") else {
        return;
    };
    let Some(st) = production_stack(Some(&e2e_lead())) else {
        return;
    };
    // This CI machine has no OS keychain: the app keeps the token in its encrypted file.
    let env = [(
        "VOXSEAL_TOKEN_PASSPHRASE",
        "contractor passphrase".to_owned(),
    )];
    let mut d = Desktop::launch_env(&tools, &env)
        .await
        .expect("launch the app");
    let flow = async {
        d.wait_id("enroll-code", LONG).await?;
        ensure!(
            d.by_id("try-demo").await.is_err() && d.by_id("demo-code").await.is_err(),
            "the release-style build offers the demo"
        );
        // The contractor clicks the link while the app runs: a second launch hands it over to
        // this app (one app per data directory) and ends.
        let second = d.launch_again(&[&st.link], Duration::from_secs(20)).await?;
        ensure!(second.success(), "the second launch ended with {second}");
        d.wait_attr("enroll-code", "value", SHORT, |v| v == st.link)
            .await
            .context("the handed-over link fills the enroll screen")?;
        d.click("enroll-submit").await?;
        d.wait_id("join-preview", LONG)
            .await
            .context("the verified project is shown before joining")?;
        let title = d.text("preview-project").await?;
        ensure!(title.contains("acme-voices"), "preview: {title}");
        let consent = d.text("preview-consent").await?;
        ensure!(
            consent.contains("I agree to be recorded for Acme."),
            "{consent}"
        );
        d.screenshot("10-production-join").await?;
        d.click("join-confirm").await?;
        d.wait_id("consent-text", LONG).await?;
        d.screenshot("11-production-consent").await?;
        d.click("consent-accept").await?;
        mic_check(&d, None).await?;
        // The first prompt is in Arabic script: recorded with the app in Arabic (right to left).
        choose_language(&d, "ar", "rtl").await?;
        d.click("nav-session").await?;
        d.wait_attr("prompt-progress", "data-index", SHORT, |i| i == "1")
            .await?;
        let prompt = d.text("prompt-text").await?;
        ensure!(prompt == ARABIC_PROMPT, "prompt 1 shows {prompt:?}");
        ensure!(
            arabic_text(&d, "prompt-progress").await?,
            "the app is not in Arabic"
        );
        d.screenshot("16-production-ar-prompt").await?;
        record_accepted(&d, 1, Some("17-production-ar-review")).await?;
        choose_language(&d, "en", "ltr").await?;
        d.click("nav-session").await?;
        watch_header(&d).await?;
        record_accepted(&d, 2, None).await?;
        d.click("nav-queue").await?;
        d.wait_id("raw-count", SHORT).await?;
        d.wait_attr("raw-count", "data-count", LONG, |c| c == "0")
            .await
            .context("raw recordings left on the machine")?;
        d.screenshot("12-production-queue").await?;
        d.click("nav-session").await?;

        // The lead signs serial 2: installed on the next broker contact (the next upload), shown.
        let serial_1 = st.signed_config();
        st.sign(2);
        record_accepted(&d, 3, None).await?;
        d.wait_attr("project-notice", "data-kind", LONG, |k| k == "updated")
            .await
            .context("the newer config was not installed and shown")?;
        // The broker offers the old serial-1 config again (a replay): refused, and said so.
        for (path, bytes) in &serial_1 {
            std::fs::write(path, bytes)?;
        }
        record_accepted(&d, 4, None).await?;
        d.wait_attr("project-notice", "data-kind", LONG, |k| k == "refused")
            .await
            .context("the replayed older config was not refused")?;
        let notice = d.text("project-notice").await?;
        ensure!(notice.contains("older"), "{notice}");

        // Revoked: the next take stays sealed on the machine and the contractor is told.
        st.revoke();
        record_accepted(&d, 5, None).await?;
        d.wait_id("revoked-notice", LONG)
            .await
            .context("the revocation was not shown")?;
        d.screenshot("13-production-revoked").await?;
        // The revoked take stays queued ("1 waiting" shown): the page did not move for it.
        header_kept_its_height(&d).await?;
        d.click("nav-queue").await?;
        d.wait_attr("raw-count", "data-count", SHORT, |c| c == "1")
            .await
            .context("the take recorded after the revocation is not kept")?;
        anyhow::Ok(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(300), flow).await;
    let mut outcome = outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the flow took over 300 s")));
    if outcome.is_ok() {
        outcome = after_restart(&mut d).await;
    }
    if outcome.is_ok() {
        outcome = readmitted(&d, &st).await;
    }
    if outcome.is_err() {
        let _ = d.screenshot("production-failure").await;
        eprintln!("--- app log (end) ---\n{}", d.driver_log_tail(80));
    }
    let closed = d.shutdown().await;
    outcome.expect("the contractor's app on the production path");
    closed.expect("shut down");
    check_bucket(&st, 15, &age);
    drop(st.broker);
}

/// Records prompt `n` with speech (in the voice of its script) and accepts it (the app then
/// uploads it in the background); `shot` names a screenshot of the take under review.
async fn record_accepted(
    d: &voxseal_e2e::Desktop,
    n: usize,
    shot: Option<&str>,
) -> anyhow::Result<()> {
    use anyhow::ensure;
    use voxseal_e2e::steps::{LONG, SHORT, take};
    d.wait_attr("prompt-progress", "data-index", SHORT, |i| {
        i == n.to_string()
    })
    .await?;
    let text = d.text("prompt-text").await?;
    let (quality, speech) = take(d, &text).await?;
    ensure!(
        (quality == "pass" || quality == "warn") && speech == "pass",
        "prompt {n}: {quality}, speech {speech}"
    );
    if let Some(name) = shot {
        d.js(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'end'});",
            vec![serde_json::json!(voxseal_e2e::testid("review"))],
        )
        .await?;
        d.screenshot(name).await?;
    }
    d.click("accept").await?;
    d.wait_attr("accepted-count", "data-count", LONG, |c| {
        c.parse::<usize>().is_ok_and(|c| c >= n)
    })
    .await?;
    Ok(())
}

/// After a restart the app is still in the production project with the same queue, and says
/// again that the enrollment is revoked.
async fn after_restart(d: &mut voxseal_e2e::Desktop) -> anyhow::Result<()> {
    use anyhow::{Context as _, ensure};
    use voxseal_e2e::steps::LONG;
    d.restart().await?;
    d.wait_id("project-name", LONG).await?;
    let name = d.text("project-name").await?;
    ensure!(name.contains("acme-voices"), "after the restart: {name}");
    ensure!(
        d.by_id("enroll-code").await.is_err(),
        "the restarted app asks to enroll"
    );
    d.wait_id("revoked-notice", LONG)
        .await
        .context("the restarted app does not say the enrollment is revoked")?;
    d.click("nav-queue").await?;
    d.wait_attr("raw-count", "data-count", LONG, |c| c == "1")
        .await
        .context("the queue changed across the restart")?;
    Ok(())
}

/// The lead re-admits the contractor and sends a new link; a second launch hands it to the
/// enrolled app, which shows it on the enroll screen. Joining with it uploads the take kept since
/// the revocation.
async fn readmitted(d: &voxseal_e2e::Desktop, st: &Stack) -> anyhow::Result<()> {
    use anyhow::{Context as _, ensure};
    use voxseal_e2e::steps::{LONG, SHORT};
    // The broker still serves the replayed serial-1 config: the lead signs the current one.
    st.sign(3);
    let link = enroll_add(st.work.path(), &st.broker.url);
    let second = d.launch_again(&[&link], Duration::from_secs(20)).await?;
    ensure!(second.success(), "the second launch ended with {second}");
    d.wait_attr("enroll-code", "value", LONG, |v| v == link)
        .await
        .context("a link handed to the enrolled app does not open the enroll screen")?;
    d.wait_id("join-back", SHORT).await?;
    d.click("enroll-submit").await?;
    d.wait_id("join-preview", LONG).await?;
    ensure!(
        d.by_id("preview-replaces").await.is_err(),
        "the same project is shown as a replacement"
    );
    d.click("join-confirm").await?;
    d.wait_id("prompt-text", LONG)
        .await
        .context("back to the prompts after joining again")?;
    d.click("nav-queue").await?;
    d.wait_attr("raw-count", "data-count", LONG, |c| c == "0")
        .await
        .context("the take kept since the revocation was not uploaded")?;
    ensure!(
        d.by_id("revoked-notice").await.is_err(),
        "still shown as revoked"
    );
    Ok(())
}
