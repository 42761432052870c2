//! The cloud path end to end with the real `voxseal` binary and the local stack
//! (`voxseal dev-stack`: embedded S3 endpoint + broker with the local issuer), cross-checked with
//! the AWS CLI (as an admin) and the Go `age` CLI.

mod support;

use std::path::Path;
use std::process::Command;

use support::{DevStack, RECORD_SPEECH_3S, run};
use voxseal_core::store::key_layout::is_checkpoint;

/// `voxseal` with its data in `<root>/data` (the stack lives in `<root>/stack`).
fn voxseal(root: &Path) -> Command {
    support::voxseal(&root.join("data"))
}

/// A stack on free ports in a new temporary directory, with the data directory joined to it.
fn dev_stack() -> (tempfile::TempDir, DevStack) {
    let root = tempfile::tempdir().unwrap();
    let stack = DevStack::start(root.path(), &root.path().join("data"));
    (root, stack)
}

fn wav_file(path: &Path, seconds: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for x in voxseal_core::capture::audio::SyntheticSource::generate(
        voxseal_core::capture::audio::SyntheticKind::Speech,
        44_100,
        (seconds * 44_100.0) as usize,
    ) {
        w.write_sample((x * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn record_enroll_upload_then_read_back_as_admin_and_decrypt_with_age() {
    let (root, stack) = dev_stack();
    let d = root.path();
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
    // Nothing left to upload: the token store is not unlocked (a wrong passphrase goes unread).
    let out = run(voxseal(d)
        .arg("upload")
        .env("VOXSEAL_TOKEN_PASSPHRASE", "not the passphrase"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing to upload: 0 uploaded, 0 failed, 0 queued; 0 raw recording(s)"),
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
    let Some(list) = stack.aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        "voxseal-dev",
        "--query",
        "Contents[].Key",
    ]) else {
        return;
    };
    let mut keys: Vec<String> = serde_json::from_value(list).unwrap();
    keys.retain(|k| !is_checkpoint(Path::new(k)));
    assert_eq!(keys.len(), 3, "{keys:?}");
    let fkey = keys
        .iter()
        .find(|k| k.starts_with("features/demo-contractor/"))
        .unwrap();
    assert!(
        fkey.contains(&sample) && fkey.contains(&features["sha256"].as_str().unwrap()[..16]),
        "{fkey}"
    );
    let head = stack
        .aws(&[
            "s3api",
            "head-object",
            "--bucket",
            "voxseal-dev",
            "--key",
            fkey,
            "--checksum-mode",
            "ENABLED",
        ])
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
    stack
        .aws(&[
            "s3",
            "cp",
            &format!("s3://voxseal-dev/{fkey}"),
            downloaded.to_str().unwrap(),
            "--quiet",
        ])
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

/// Issue 12 finding 14: `voxseal upload` leaves the audit log's head in the bucket, so deleting
/// the log's last lines (the upload events after the newest sealed sample, which no manifest
/// anchors) is caught by `audit verify --against` a copy of the contractor's `manifests/` prefix.
#[test]
fn an_audit_log_cut_after_the_last_sample_is_caught_by_the_bucket_checkpoint() {
    let (root, stack) = dev_stack();
    let d = root.path();
    run(voxseal(d).args(RECORD_SPEECH_3S));
    run(voxseal(d).arg("upload"));
    let prefix = "manifests/demo-contractor/";
    let checkpoints: Vec<String> = stack
        .objects()
        .into_keys()
        .filter(|k| is_checkpoint(Path::new(k)))
        .collect();
    assert_eq!(checkpoints.len(), 1, "{:?}", stack.objects());
    assert!(
        checkpoints[0].starts_with(&format!("{prefix}audit/")),
        "{checkpoints:?}"
    );
    // The contractor's manifests/ prefix as a lead downloads it (`aws s3 cp --recursive`): the
    // bytes the endpoint holds, under their keys without the prefix.
    let bucket = stack
        .dir
        .join("s3")
        .join(voxseal_localstack::devstack::BUCKET);
    let copy = d.join("bucket-manifests");
    for key in stack
        .objects()
        .into_keys()
        .filter(|k| k.starts_with(prefix))
    {
        let to = copy.join(&key[prefix.len()..]);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(bucket.join(&key), &to).unwrap();
    }
    let verify = |d: &Path| {
        voxseal(d)
            .args(["audit", "verify", "--against"])
            .arg(&copy)
            .output()
            .unwrap()
    };
    let out = verify(d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("1 manifest anchor(s) and 1 bucket checkpoint(s) hold"),
        "{err}"
    );

    // Delete every line after the sample's take.sealed: the manifest's anchor still holds.
    let log = d.join("data/audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let sealed = lines
        .iter()
        .rposition(|l| l.contains("\"event\":\"take.sealed\""))
        .unwrap();
    assert!(
        lines[sealed + 1..]
            .iter()
            .any(|l| l.contains("\"event\":\"item.uploaded\"")),
        "{text}"
    );
    std::fs::write(&log, format!("{}\n", lines[..=sealed].join("\n"))).unwrap();
    let plain = voxseal(d).args(["audit", "verify"]).output().unwrap();
    assert!(plain.status.success(), "the chain alone cannot tell");
    let out = verify(d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "the log ends at event {} but the bucket holds a checkpoint at event",
            sealed + 1
        )) && err.contains("lines were deleted from its end"),
        "{err}"
    );
}

#[test]
fn revoked_contractor_gets_a_clear_error_and_keeps_the_queue() {
    let (root, _stack) = dev_stack();
    let d = root.path();
    run(voxseal(d).args(RECORD_SPEECH_3S));
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

/// Issue 11 section 6: `voxseal enroll revoke --now` against moto's S3 (IAM on, the admin's
/// credentials): the bucket policy gains the contractor under `DenyRevokedContractors`, keeps its
/// other statements, and a second run changes nothing. moto does not evaluate policy Conditions
/// (NOTES.md), so this checks the policy document written, not that S3 then denies the session.
#[test]
fn revoke_now_denies_the_contractor_in_the_bucket_policy() {
    let Some(moto) = voxseal_testkit::MotoServer::try_start() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let registry = d.path().join("registry.toml");
    let bucket = "voxseal-revoke";
    moto.aws_ok(&["s3api", "create-bucket", "--bucket", bucket]);
    let tls_only = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
    .to_string();
    moto.aws_ok(&[
        "s3api",
        "put-bucket-policy",
        "--bucket",
        bucket,
        "--policy",
        &tls_only,
    ]);
    let revoke = |id: &str| {
        let mut c = voxseal(d.path());
        c.args([
            "enroll",
            "revoke",
            id,
            "--now",
            "--bucket",
            bucket,
            "--registry",
        ])
        .arg(&registry)
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
        for (k, v) in moto
            .admin_credentials()
            .env(voxseal_testkit::MotoServer::REGION)
        {
            c.env(k, v);
        }
        String::from_utf8(run(&mut c).stderr).unwrap()
    };
    let policy = || -> serde_json::Value {
        let out = moto.aws_ok(&["s3api", "get-bucket-policy", "--bucket", bucket]);
        serde_json::from_str(out["Policy"].as_str().unwrap()).unwrap()
    };
    for id in ["alice-01", "bob-02"] {
        run(voxseal(d.path())
            .args(["enroll", "add", id, "--registry"])
            .arg(&registry));
    }
    let said = revoke("alice-01");
    assert!(said.contains("RevokedContractors=alice-01"), "{said}");
    revoke("bob-02");
    let first = policy();
    let statements = first["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{first}");
    assert_eq!(statements[0]["Sid"], "DenyInsecureTransport");
    let deny = &statements[1];
    assert_eq!(deny["Sid"], "DenyRevokedContractors");
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(
        deny["Condition"]["StringEquals"]["aws:SourceIdentity"],
        serde_json::json!(["alice-01", "bob-02"])
    );
    assert_eq!(
        deny["Resource"],
        serde_json::json!([
            format!("arn:aws:s3:::{bucket}"),
            format!("arn:aws:s3:::{bucket}/*")
        ])
    );
    let said = revoke("alice-01");
    assert!(
        said.contains("already revoked") && said.contains("already denies"),
        "{said}"
    );
    assert_eq!(policy(), first, "idempotent");
    let list = String::from_utf8(
        run(voxseal(d.path())
            .args(["enroll", "list", "--json", "--registry"])
            .arg(&registry))
        .stdout,
    )
    .unwrap();
    assert_eq!(list.matches("\"revoked\"").count(), 2, "{list}");
}

#[test]
fn broker_down_means_queued_then_drained_later() {
    let (s3_port, broker_port) = (voxseal_testkit::free_port(), voxseal_testkit::free_port());
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    let stack = DevStack::start_on(d, &d.join("data"), s3_port, broker_port);
    run(voxseal(d).args(RECORD_SPEECH_3S));
    let broker = stack.broker.clone();
    drop(stack); // stops both servers; the data directory stays
    let out = voxseal(d).arg("upload").output().unwrap();
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
        serde_json::from_slice(&run(voxseal(d).args(["outbox", "--json"])).stdout).unwrap();
    assert_eq!(outbox["items"][0]["status"], "uploading");
    assert_eq!(outbox["raw_on_machine"]["sealed_raw"], 1);
    // The stack comes back (same ports, same registry): the queue drains with the stored token.
    let _stack = DevStack::start_on(d, &d.join("data"), s3_port, broker_port);
    let out = run(voxseal(d).arg("upload"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 uploaded, 0 failed, 0 queued; 0 raw recording(s)"),
        "{err}"
    );
}

#[test]
fn enrollment_codes_work_once_and_unknown_tokens_are_refused() {
    let (root, stack) = dev_stack();
    let d = root.path();
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
    let lead = d.join("stack/keys/lead.pub");
    run(voxseal(other.path())
        .args(["enroll", "join", &code, "--broker", &stack.broker])
        .env("VOXSEAL_TRUST_LEAD_KEY", &lead));
    let again = voxseal(other.path())
        .args(["enroll", "join", &code, "--broker", &stack.broker])
        .env("VOXSEAL_TRUST_LEAD_KEY", &lead)
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
        .env("VOXSEAL_TRUST_LEAD_KEY", &lead)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("enrollment code refused"), "{err}");
}

/// Issue 12 finding 9: a link for another contractor does not take over a data directory that
/// holds this contractor's queue (the broker names the code's contractor before it is spent), and
/// the code still works elsewhere.
#[test]
fn joining_as_another_contractor_waits_for_the_queue_and_keeps_the_code() {
    let (root, stack) = dev_stack();
    let d = root.path();
    run(voxseal(d).args(RECORD_SPEECH_3S));
    let out = run(voxseal(d)
        .args([
            "enroll",
            "add",
            "bob-02",
            "--broker",
            &stack.broker,
            "--registry",
        ])
        .arg(d.join("stack/registry.toml")));
    let link = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("voxseal://enroll?"))
        .unwrap()
        .to_owned();
    let refused = voxseal(d).args(["enroll", "join", &link]).output().unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("not uploaded yet") && err.contains("demo-contractor"),
        "{err}"
    );
    let other = tempfile::tempdir().unwrap();
    run(support::voxseal(&other.path().join("data"))
        .args(["enroll", "join", &link])
        .env("VOXSEAL_TRUST_LEAD_KEY", d.join("stack/keys/lead.pub")));
}

/// A versioned bucket in moto and a signed project that uploads into it, as the lead holds it:
/// `<dir>/proj`.
fn moto_project(
    moto: &voxseal_testkit::MotoServer,
    dir: &Path,
    bucket: &str,
) -> std::path::PathBuf {
    moto.aws_ok(&["s3api", "create-bucket", "--bucket", bucket]);
    moto.aws_ok(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        bucket,
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    let key = moto.aws_ok(&["kms", "create-key"]);
    let proj = dir.join("proj");
    let (prompts, consent) = (dir.join("prompts.txt"), dir.join("consent.txt"));
    std::fs::write(&prompts, "One.\nTwo.\n").unwrap();
    std::fs::write(&consent, "I agree.").unwrap();
    run(voxseal(dir)
        .args(["project", "init"])
        .arg(&proj)
        .arg("--prompts")
        .arg(&prompts)
        .arg("--consent")
        .arg(&consent)
        .args(["--name", "erase-test", "--no-password", "--bucket", bucket])
        .args([
            "--region",
            voxseal_testkit::MotoServer::REGION,
            "--kms-key-arn",
        ])
        .arg(key["KeyMetadata"]["Arn"].as_str().unwrap())
        .args(["--broker-url", "https://broker.invalid", "--endpoint"])
        .arg(moto.endpoint_url()));
    proj
}

/// `voxseal <args>` as the lead, with the admin's credentials for moto.
fn as_lead(moto: &voxseal_testkit::MotoServer, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = voxseal(dir);
    c.args(args)
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(std::process::Stdio::null());
    for (k, v) in moto
        .admin_credentials()
        .env(voxseal_testkit::MotoServer::REGION)
    {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Every (key, version) in `bucket` under `prefix`, delete markers included.
fn versions(moto: &voxseal_testkit::MotoServer, bucket: &str, prefix: &str) -> Vec<(String, bool)> {
    let out = moto.aws_ok(&[
        "s3api",
        "list-object-versions",
        "--bucket",
        bucket,
        "--prefix",
        prefix,
    ]);
    let mut v = Vec::new();
    for (field, marker) in [("Versions", false), ("DeleteMarkers", true)] {
        for o in out[field].as_array().into_iter().flatten() {
            v.push((o["Key"].as_str().unwrap().to_owned(), marker));
        }
    }
    v.sort();
    v
}

/// Issue 14 section 6: `voxseal erase` against moto's versioned S3. It lists, refuses without
/// confirmation, then deletes every version and delete marker under the contractor's three
/// prefixes (not a contractor whose id merely starts the same), and records started and completed
/// events in the audit bucket; a second run finds nothing.
#[test]
fn erase_deletes_every_version_of_one_contractor_and_records_it() {
    let Some(moto) = voxseal_testkit::MotoServer::try_start() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let (bucket, audit) = ("voxseal-erase", "voxseal-erase-audit");
    moto.aws_ok(&["s3api", "create-bucket", "--bucket", audit]);
    let proj = moto_project(&moto, d.path(), bucket);
    let body = d.path().join("body");
    std::fs::write(&body, b"sealed bytes").unwrap();
    let put = |key: &str| {
        moto.aws_ok(&[
            "s3api",
            "put-object",
            "--bucket",
            bucket,
            "--key",
            key,
            "--body",
            body.to_str().unwrap(),
        ]);
    };
    let day = "2026/12/06";
    let alice = [
        format!("raw/alice-01/{day}/sample-1-00.wav.age"),
        format!("features/alice-01/{day}/sample-1-00.safetensors.age"),
        format!("manifests/alice-01/{day}/sample-1.json"),
        "manifests/alice-01/audit/000000000001-0123456789abcdef.checkpoint".to_owned(),
    ];
    for k in &alice {
        put(k);
    }
    put(&alice[0]); // a second version
    moto.aws_ok(&[
        "s3api",
        "delete-object",
        "--bucket",
        bucket,
        "--key",
        &alice[2],
    ]); // a delete marker
    let others = [
        format!("raw/bob-02/{day}/sample-2-00.wav.age"),
        format!("raw/alice-011/{day}/sample-3-00.wav.age"),
    ];
    for k in &others {
        put(k);
    }
    let lead_pub = proj.join("lead.pub");
    let toml = proj.join("project.toml");
    let erase = |extra: &[&str]| {
        let mut args = vec![
            "erase",
            "--contractor",
            "alice-01",
            "--reason",
            "consent withdrawn, ticket 4411",
        ];
        args.extend(["--project", toml.to_str().unwrap()]);
        args.extend([
            "--lead-pub",
            lead_pub.to_str().unwrap(),
            "--audit-bucket",
            audit,
        ]);
        args.extend(extra);
        as_lead(&moto, d.path(), &args)
    };
    let before: usize = ["raw/alice-01/", "features/alice-01/", "manifests/alice-01/"]
        .iter()
        .map(|p| versions(&moto, bucket, p).len())
        .sum();
    assert_eq!(before, 6);

    let dry = erase(&["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let listed = String::from_utf8(dry.stdout).unwrap();
    assert_eq!(listed.lines().count(), 6, "{listed}");
    assert_eq!(listed.matches("delete marker").count(), 1, "{listed}");
    let refused = erase(&[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(
        versions(&moto, bucket, "raw/alice-01/").len(),
        2,
        "nothing deleted yet"
    );

    let done = erase(&["--yes"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    for p in ["raw/alice-01/", "features/alice-01/", "manifests/alice-01/"] {
        assert_eq!(versions(&moto, bucket, p), vec![], "{p}");
    }
    for k in &others {
        assert_eq!(versions(&moto, bucket, k).len(), 1, "{k} must stay");
    }
    let events = versions(&moto, audit, "erasures/erase-test/alice-01/");
    assert_eq!(events.len(), 2, "{events:?}");
    let tmp = d.path().join("event.json");
    let read = |key: &str| -> serde_json::Value {
        moto.aws_ok(&[
            "s3api",
            "get-object",
            "--bucket",
            audit,
            "--key",
            key,
            tmp.to_str().unwrap(),
        ]);
        serde_json::from_slice(&std::fs::read(&tmp).unwrap()).unwrap()
    };
    let (started, completed) = (read(&events[1].0), read(&events[0].0));
    let (started, completed) = if started["event"] == "erasure.started" {
        (started, completed)
    } else {
        (completed, started)
    };
    assert_eq!(started["event"], "erasure.started");
    assert_eq!(completed["event"], "erasure.completed");
    for e in [&started, &completed] {
        assert_eq!(e["contractor"], "alice-01");
        assert_eq!(e["reason"], "consent withdrawn, ticket 4411");
        assert_eq!(e["requested_by"], moto.admin_arn());
        assert_eq!(e["versions"], 6);
    }
    assert_eq!(completed["remaining"], 0);
    let again = erase(&["--yes"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to erase"));
    let bad = erase(&["--yes", "--reason", "x"]);
    assert!(!bad.status.success());
}

/// Issue 14 section 6: `voxseal retention check` against moto: no lifecycle, rules that agree
/// with the signed project's retention_days (365, the default), and rules that do not.
#[test]
fn retention_check_compares_the_lifecycle_with_the_signed_project() {
    let Some(moto) = voxseal_testkit::MotoServer::try_start() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let bucket = "voxseal-retention";
    let proj = moto_project(&moto, d.path(), bucket);
    let check = || {
        let toml = proj.join("project.toml");
        let lead = proj.join("lead.pub");
        let out = as_lead(
            &moto,
            d.path(),
            &[
                "retention",
                "check",
                "--project",
                toml.to_str().unwrap(),
                "--lead-pub",
                lead.to_str().unwrap(),
            ],
        );
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        (out.status.code(), said.into_owned())
    };
    let (code, said) = check();
    assert_eq!(code, Some(4), "{said}");
    assert!(said.contains("kept forever"), "{said}");
    let lifecycle = |raw_days: u32| {
        let rules = serde_json::json!({"Rules": [
            {"ID": "raw-archive-then-expire", "Status": "Enabled", "Filter": {"Prefix": "raw/"},
             "Expiration": {"Days": raw_days}},
            {"ID": "whole-bucket-hygiene", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 30}},
        ]})
        .to_string();
        moto.aws_ok(&[
            "s3api",
            "put-bucket-lifecycle-configuration",
            "--bucket",
            bucket,
            "--lifecycle-configuration",
            &rules,
        ]);
    };
    lifecycle(365);
    let (code, said) = check();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("raw/ expires after 365 days"), "{said}");
    lifecycle(400);
    let (code, said) = check();
    assert_eq!(code, Some(4), "{said}");
    assert!(
        said.contains("raw/ expires after 400 days (rule raw-archive-then-expire)"),
        "{said}"
    );
}
