//! `voxseal enroll join` and the trust rules of a build without a pinned key: links are parsed as
//! URLs and refused unless https (or http to this machine), and an extra lead key is accepted only
//! from outside the data directory.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn voxseal(data: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_voxseal"));
    cmd.args(args)
        .env("VOXSEAL_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .env_remove("VOXSEAL_TRUST_LEAD_KEY")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn links_to_lookalike_or_plain_http_brokers_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for link in [
        "voxseal://enroll?broker=http%3A%2F%2Flocalhost.evil.com&code=vxe_ab_CD",
        "voxseal://enroll?broker=http://127.0.0.1.evil.com&code=vxe_ab_CD",
        "voxseal://enroll?broker=http://evil.example.com&code=vxe_ab_CD",
        "voxseal://enroll?broker=https://user:pw@b.example.com&code=vxe_ab_CD",
    ] {
        let out = voxseal(&data, &["enroll", "join", link], &[]);
        assert!(!out.status.success(), "{link} was accepted");
        let err = stderr(&out);
        assert!(
            err.contains("https://") || err.contains("user name"),
            "{link}: {err}"
        );
        assert!(
            !err.contains("connection"),
            "{link}: a request was made: {err}"
        );
    }
}

#[test]
fn an_extra_lead_key_is_never_read_from_inside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let proj = dir.path().join("proj");
    std::fs::write(dir.path().join("prompts.txt"), "One sentence.\n").unwrap();
    std::fs::write(dir.path().join("consent.txt"), "I agree.\n").unwrap();
    let (prompts, consent) = (
        dir.path().join("prompts.txt"),
        dir.path().join("consent.txt"),
    );
    let out = voxseal(
        &data,
        &[
            "project",
            "init",
            proj.to_str().unwrap(),
            "--name",
            "trust-test",
            "--no-password",
            "--prompts",
            prompts.to_str().unwrap(),
            "--consent",
            consent.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::create_dir_all(&data).unwrap();
    let inside = data.join("lead.pub");
    std::fs::copy(proj.join("lead.pub"), &inside).unwrap();
    let config = proj.join("project.toml");
    let init = [
        "init",
        "--contractor",
        "alice-01",
        "--project",
        config.to_str().unwrap(),
    ];
    let out = voxseal(&data, &init, &[("VOXSEAL_TRUST_LEAD_KEY", &inside)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("inside the data directory"),
        "{}",
        stderr(&out)
    );
    // The file the old CLI persisted in the data directory is not trusted either.
    std::fs::copy(proj.join("lead.pub"), data.join("trusted-lead.pub")).unwrap();
    let out = voxseal(&data, &init, &[]);
    assert!(
        !out.status.success(),
        "a key in the data directory was trusted"
    );
    let out = voxseal(
        &data,
        &init,
        &[("VOXSEAL_TRUST_LEAD_KEY", &proj.join("lead.pub"))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}
