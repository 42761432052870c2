//! Issue 14 section 1: `voxseal project init --wrap-identities` against moto's KMS and Secrets
//! Manager. The identities never rest as files; the AWS CLI (as an admin) reads the secret back
//! and unwraps the data key through KMS with the project's encryption context, and the identity
//! it opens is the one the signed project.toml seals to.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use voxseal_testkit::MotoServer;

const PROJECT: &str = "wrap-test";

/// `voxseal project init <dir> --wrap-identities <key> <extra>` as the lead (admin credentials).
fn init(moto: &MotoServer, dir: &Path, kms_key: &str, extra: &[&str]) -> Output {
    let work = dir.parent().unwrap();
    let (prompts, consent) = (work.join("prompts.txt"), work.join("consent.txt"));
    std::fs::write(&prompts, "One.\nTwo.\n").unwrap();
    std::fs::write(&consent, "I agree.").unwrap();
    let mut c: Command = support::voxseal(&work.join("data"));
    c.args(["project", "init"])
        .arg(dir)
        .arg("--prompts")
        .arg(&prompts)
        .arg("--consent")
        .arg(&consent)
        .args([
            "--name",
            PROJECT,
            "--no-password",
            "--wrap-identities",
            kms_key,
        ])
        .args(["--region", MotoServer::REGION])
        .args(extra)
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(std::process::Stdio::null());
    for (k, v) in moto.admin_credentials().env(MotoServer::REGION) {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The identity in the secret `name`, unwrapped with the AWS CLI's `kms decrypt` under the
/// encryption context for `purpose` (`None` when KMS refuses).
fn unwrap_with_aws_cli(
    moto: &MotoServer,
    work: &Path,
    name: &str,
    purpose: &str,
) -> Option<String> {
    let secret = moto.aws_ok(&["secretsmanager", "get-secret-value", "--secret-id", name]);
    let doc = B64
        .decode(secret["SecretBinary"].as_str().unwrap())
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    assert_eq!(doc["format"], "voxseal.wrapped-identity/1");
    assert_eq!(
        (doc["project"].as_str(), doc["purpose"].as_str()),
        (Some(PROJECT), Some(name.rsplit('/').next().unwrap()))
    );
    let field = |k: &str| B64.decode(doc[k].as_str().unwrap()).unwrap();
    let blob = work.join("wrapped-key");
    std::fs::write(&blob, field("wrapped_key")).unwrap();
    let context = format!("voxseal:project={PROJECT},voxseal:purpose={purpose}");
    let out = moto.aws(&[
        "kms",
        "decrypt",
        "--ciphertext-blob",
        &format!("fileb://{}", blob.display()),
        "--encryption-context",
        &context,
    ]);
    if !out.status.success() {
        return None;
    }
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = B64.decode(out["Plaintext"].as_str().unwrap()).unwrap();
    let aad = format!(
        r#"{{"format":"voxseal.wrapped-identity/1","voxseal:project":"{PROJECT}","voxseal:purpose":"{purpose}"}}"#
    );
    let plain = ChaCha20Poly1305::new(Key::from_slice(&key))
        .decrypt(
            Nonce::from_slice(&field("nonce")),
            Payload {
                msg: &field("ciphertext"),
                aad: aad.as_bytes(),
            },
        )
        .expect("the identity opens under the unwrapped data key");
    Some(String::from_utf8(plain).unwrap())
}

/// The recipient the signed project.toml lists for `purpose`.
fn recipient_in_config(dir: &Path, purpose: &str) -> String {
    let text = std::fs::read_to_string(dir.join("project.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{purpose} = [")))
        .unwrap_or_else(|| panic!("no {purpose} recipient in\n{text}"));
    line.split('"').nth(1).unwrap().to_owned()
}

/// moto, a work directory and a new KMS key's ARN (`None`: moto is not installed).
fn moto_with_a_kms_key() -> Option<(MotoServer, tempfile::TempDir, String)> {
    let moto = MotoServer::try_start()?;
    let key = moto.aws_ok(&["kms", "create-key"])["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    Some((moto, tempfile::tempdir().unwrap(), key))
}

#[test]
fn project_init_wraps_both_identities_under_kms_and_writes_no_key_file() {
    let Some((moto, work, key)) = moto_with_a_kms_key() else {
        return;
    };
    let proj = work.path().join("proj");
    let out = init(&moto, &proj, &key, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("secret voxseal/{PROJECT}/training")),
        "{stderr}"
    );

    let files = support::files_under(&proj);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&proj).unwrap().display().to_string())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("training") || n.contains("archive")),
        "{names:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes.windows(15).any(|w| w == b"AGE-SECRET-KEY-"),
            "{} holds an identity",
            f.display()
        );
    }

    for purpose in ["training", "archive"] {
        let name = format!("voxseal/{PROJECT}/{purpose}");
        let identity = unwrap_with_aws_cli(&moto, work.path(), &name, purpose)
            .unwrap_or_else(|| panic!("KMS refused the right context for {name}"));
        let identity: age::x25519::Identity = identity.parse().unwrap();
        assert_eq!(
            identity.to_public().to_string(),
            recipient_in_config(&proj, purpose)
        );
        let other = if purpose == "training" {
            "archive"
        } else {
            "training"
        };
        assert!(
            unwrap_with_aws_cli(&moto, work.path(), &name, other).is_none(),
            "the {purpose} data key unwrapped under the {other} context"
        );
    }
}

#[test]
fn project_init_refuses_to_replace_an_existing_wrapped_identity_and_writes_nothing() {
    let Some((moto, work, key)) = moto_with_a_kms_key() else {
        return;
    };
    let first = work.path().join("first");
    let out = init(&moto, &first, &key, &["--features-only"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = moto.aws_ok(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "voxseal/wrap-test/training",
    ]);

    let second = work.path().join("second");
    let out = init(&moto, &second, &key, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("voxseal/wrap-test/training already exists"),
        "{stderr}"
    );
    assert!(!second.exists() || support::files_under(&second).is_empty());
    let after = moto.aws_ok(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "voxseal/wrap-test/training",
    ]);
    assert_eq!(before["VersionId"], after["VersionId"]);

    // A prefix the service would refuse is refused before any call.
    let out = init(
        &moto,
        &work.path().join("third"),
        &key,
        &["--identity-secret-prefix", "bad prefix/"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--identity-secret-prefix: use"));
    // A KMS key that does not exist: nothing is created or written.
    let out = init(
        &moto,
        &work.path().join("fourth"),
        "alias/missing",
        &["--identity-secret-prefix", "voxseal/other"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no secret was created"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!work.path().join("fourth").exists());
}
