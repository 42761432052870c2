//! The cloud path end to end with the real `voxseal` binary and the local stack
//! (`voxseal dev-stack`: embedded S3 endpoint + broker with the local issuer), cross-checked with
//! the AWS CLI (as an admin) and the Go `age` CLI.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

struct DevStack {
    child: Child,
    dir: std::sync::Arc<tempfile::TempDir>,
    endpoint: String,
    broker: String,
    admin: (String, String),
}

impl Drop for DevStack {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

fn voxseal(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voxseal"));
    c.env("VOXSEAL_DATA_DIR", dir.join("data"))
        .env("VOXSEAL_TOKEN_STORE", "file")
        .env("VOXSEAL_TOKEN_PASSPHRASE", "test passphrase")
        .env("NO_COLOR", "1");
    c
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Starts `voxseal dev-stack --join` on free ports, with `grant_secs`-second credentials.
fn dev_stack(grant_secs: u32) -> DevStack {
    start_stack(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        0,
        0,
        grant_secs,
    )
}

fn start_stack(
    dir: std::sync::Arc<tempfile::TempDir>,
    s3_port: u16,
    broker_port: u16,
    grant_secs: u32,
) -> DevStack {
    let mut cmd = voxseal(dir.path());
    cmd.args(["dev-stack", "--dir"])
        .arg(dir.path().join("stack"))
        .args([
            "--s3-port",
            &s3_port.to_string(),
            "--broker-port",
            &broker_port.to_string(),
            "--join",
        ])
        .args(["--grant-secs", &grant_secs.to_string()]);
    let (child, banner) = support::spawn_dev_stack(cmd);
    DevStack {
        child,
        dir,
        endpoint: banner.endpoint,
        broker: banner.broker,
        admin: banner.admin,
    }
}

fn aws(stack: &DevStack, args: &[&str]) -> Option<Output> {
    let exe = voxseal_testkit::repo_root().join(".venv/bin/aws");
    if !exe.exists() {
        assert!(
            !voxseal_testkit::tools_required(),
            "the AWS CLI is required: run scripts/setup.sh --test"
        );
        eprintln!("skipped: no AWS CLI in .venv");
        return None;
    }
    let out = Command::new(exe)
        .args(["--endpoint-url", &stack.endpoint])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &stack.admin.0)
        .env("AWS_SECRET_ACCESS_KEY", &stack.admin.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

fn wav_file(path: &Path, seconds: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for x in voxseal_core::audio::SyntheticSource::generate(
        voxseal_core::audio::SyntheticKind::Speech,
        44_100,
        (seconds * 44_100.0) as usize,
    ) {
        w.write_sample((x * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn record_enroll_upload_then_read_back_as_admin_and_decrypt_with_age() {
    let stack = dev_stack(900);
    let d = stack.dir.path();
    let wav = d.join("take.wav");
    wav_file(&wav, 4.0);
    let sample = String::from_utf8(
        run(voxseal(d)
            .args(["record", "--source"])
            .arg(format!("file:{}", wav.display()))
            .args(["--fast", "--prompt", "p001", "--accept"]))
        .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let out = run(voxseal(d).arg("upload"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 uploaded, 0 failed, 0 queued; 0 raw recording(s) on this machine"),
        "{err}"
    );

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join("data/outbox").join(&sample).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let features = manifest["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "features")
        .unwrap();
    let Some(list) = aws(
        &stack,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            "voxseal-dev",
            "--query",
            "Contents[].Key",
        ],
    ) else {
        return;
    };
    let keys: Vec<String> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let fkey = keys
        .iter()
        .find(|k| k.starts_with("features/demo-contractor/"))
        .unwrap();
    assert!(
        fkey.contains(&sample) && fkey.contains(&features["sha256"].as_str().unwrap()[..16]),
        "{fkey}"
    );
    let head: serde_json::Value = serde_json::from_slice(
        &aws(
            &stack,
            &[
                "s3api",
                "head-object",
                "--bucket",
                "voxseal-dev",
                "--key",
                fkey,
                "--checksum-mode",
                "ENABLED",
            ],
        )
        .unwrap()
        .stdout,
    )
    .unwrap();
    assert_eq!(head["ContentLength"], features["size"]);
    assert_eq!(head["ServerSideEncryption"], "aws:kms");
    assert_eq!(
        head["SSEKMSKeyId"],
        "arn:aws:kms:us-east-1:000000000000:key/voxseal-dev"
    );
    let sha_b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(hex::decode(features["sha256"].as_str().unwrap()).unwrap())
    };
    assert_eq!(head["ChecksumSHA256"], sha_b64.as_str());

    // Download as admin and decrypt with the Go age CLI; compare with what our own open gives
    // for the same object (the local copy was deleted after upload).
    let downloaded = d.join("features.safetensors.age");
    aws(
        &stack,
        &[
            "s3",
            "cp",
            &format!("s3://voxseal-dev/{fkey}"),
            downloaded.to_str().unwrap(),
            "--quiet",
        ],
    )
    .unwrap();
    let Some(age) = voxseal_testkit::require_tool("age") else {
        return;
    };
    let key = d.join("stack/keys/training.key");
    let plain = voxseal_testkit::age_decrypt(&age, &key, &downloaded).unwrap();
    let st = safetensors::SafeTensors::deserialize(&plain).unwrap();
    assert_eq!(
        st.tensor("log_mel").unwrap().shape(),
        &[
            manifest["features"]["frames"].as_u64().unwrap() as usize,
            80
        ]
    );
    // And our open verifies the downloaded file against the manifest.
    let out = run(voxseal(d)
        .args(["open"])
        .arg(&downloaded)
        .arg("--manifest")
        .arg(d.join("data/outbox").join(&sample).join("manifest.json"))
        .arg("-i")
        .arg(&key)
        .arg("--out")
        .arg(d.join("opened")));
    let opened = std::fs::read(d.join("opened/features.safetensors")).unwrap();
    assert_eq!(opened, plain, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn revoked_contractor_gets_a_clear_error_and_keeps_the_queue() {
    let stack = dev_stack(900);
    let d = stack.dir.path();
    run(voxseal(d).args([
        "record",
        "--source",
        "synthetic:speech",
        "--fast",
        "--seconds",
        "3",
        "--accept",
    ]));
    run(voxseal(d)
        .args(["enroll", "revoke", "demo-contractor", "--registry"])
        .arg(d.join("stack/registry.toml")));
    let out = voxseal(d).arg("upload").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("revoked"), "{err}");
    let outbox: serde_json::Value =
        serde_json::from_slice(&run(voxseal(d).args(["outbox", "--json"])).stdout).unwrap();
    assert_eq!(outbox["raw_on_machine"]["sealed_raw"], 1, "nothing lost");
    let list = String::from_utf8(
        run(voxseal(d)
            .args(["enroll", "list", "--registry"])
            .arg(d.join("stack/registry.toml")))
        .stdout,
    )
    .unwrap();
    assert!(
        list.contains("demo-contractor") && list.contains("Revoked"),
        "{list}"
    );
}

#[test]
fn broker_down_means_queued_then_drained_later() {
    let (s3_port, broker_port) = (voxseal_testkit::free_port(), voxseal_testkit::free_port());
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let stack = start_stack(dir.clone(), s3_port, broker_port, 900);
    let d: PathBuf = dir.path().to_owned();
    run(voxseal(&d).args([
        "record",
        "--source",
        "synthetic:speech",
        "--fast",
        "--seconds",
        "3",
        "--accept",
    ]));
    let broker = stack.broker.clone();
    drop(stack); // stops both servers; the data directory stays
    let out = voxseal(&d).arg("upload").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "offline is a state, not an error: {err}"
    );
    assert!(
        err.contains("offline:") && err.contains(&broker) && err.contains("stay queued"),
        "{err}"
    );
    let outbox: serde_json::Value =
        serde_json::from_slice(&run(voxseal(&d).args(["outbox", "--json"])).stdout).unwrap();
    assert_eq!(outbox["items"][0]["status"], "uploading");
    assert_eq!(outbox["raw_on_machine"]["sealed_raw"], 1);
    // The stack comes back (same ports, same registry): the queue drains with the stored token.
    let _stack = start_stack(dir.clone(), s3_port, broker_port, 900);
    let out = run(voxseal(&d).arg("upload"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 uploaded, 0 failed, 0 queued; 0 raw recording(s)"),
        "{err}"
    );
}

#[test]
fn enrollment_codes_work_once_and_unknown_tokens_are_refused() {
    let stack = dev_stack(900);
    let d = stack.dir.path();
    let reg = d.join("stack/registry.toml");
    let code = String::from_utf8(
        run(voxseal(d)
            .args(["enroll", "add", "bob-02", "--registry"])
            .arg(&reg))
        .stdout,
    )
    .unwrap();
    let code = code.lines().next().unwrap().trim().to_owned();
    let other = tempfile::tempdir().unwrap();
    run(voxseal(other.path()).args(["enroll", "join", &code, "--broker", &stack.broker]));
    let again = voxseal(other.path())
        .args(["enroll", "join", &code, "--broker", &stack.broker])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("enrollment code refused") && err.contains("used"),
        "{err}"
    );
    let bad = voxseal(other.path())
        .args([
            "enroll",
            "join",
            "vxe_000000000000_notacode",
            "--broker",
            &stack.broker,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("enrollment code refused"));
}
