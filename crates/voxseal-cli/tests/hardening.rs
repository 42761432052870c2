//! Process hardening of the real `voxseal` binary: no core dumps, and an enrollment that cannot
//! keep its token does not spend the one-time code.

// Some tests here are Unix-only (marked); on Windows what only they use is unused.
#![cfg_attr(windows, allow(unused_imports, dead_code))]

mod support;

use std::path::Path;
use std::process::Command;

use support::{DevStack, run};

/// Field `name` of /proc/<pid>/limits: (soft, hard).
#[cfg(target_os = "linux")]
fn limit(pid: u32, name: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap();
    let mut f = line[name.len()..].split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

/// The running binary (blocked on a broker that accepts and never answers) has RLIMIT_CORE 0
/// soft and hard, and is not dumpable: the kernel then gives its /proc/<pid>/status (like every
/// file there) to root instead of the process's user. As root the binary runs as `nobody` so that
/// the two differ.
#[cfg(target_os = "linux")]
#[test]
fn the_binary_disables_core_dumps_at_start() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    // `nobody` cannot reach the build directory under /root: run a copy.
    let exe = dir.path().join("voxseal");
    std::fs::copy(env!("CARGO_BIN_EXE_voxseal"), &exe).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let user = if root {
        65534
    } else {
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    std::os::unix::fs::chown(&data, Some(user), None).unwrap();

    let broker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", broker.local_addr().unwrap());
    let mut cmd = Command::new(&exe);
    cmd.args([
        "enroll",
        "join",
        "vxe_000000000000_notacode",
        "--broker",
        &url,
    ])
    .env("VOXSEAL_DATA_DIR", &data)
    .env("VOXSEAL_TOKEN_STORE", "file")
    .env("VOXSEAL_TOKEN_PASSPHRASE", "test passphrase")
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    if root {
        cmd.uid(user).gid(65534);
    }
    let mut child = cmd.spawn().unwrap();
    // Once it connects, it has been running its command for a while.
    let (_conn, _) = broker.accept().unwrap();
    let pid = child.id();
    let core = limit(pid, "Max core file size");
    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        core,
        ("0".into(), "0".into()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(user, 0);
    assert_eq!(
        owner, 0,
        "/proc/{pid}/status belongs to uid {owner}: the process is dumpable"
    );
}

/// `voxseal` for `data` with no usable keychain (no D-Bus session, no display) and no
/// passphrase for a token file. Linux only: Windows and macOS always have their keychain.
#[cfg(target_os = "linux")]
fn without_keychain(data: &Path) -> Command {
    let mut c = support::voxseal(data);
    c.env_remove("VOXSEAL_TOKEN_STORE")
        .env_remove("VOXSEAL_TOKEN_PASSPHRASE")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env("XDG_RUNTIME_DIR", data.parent().unwrap());
    c
}

#[cfg(target_os = "linux")]
#[test]
fn enrolling_where_the_token_cannot_be_kept_does_not_spend_the_code() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    let stack = DevStack::start(d, &d.join("data"));
    let code = String::from_utf8(
        run(support::voxseal(&d.join("data"))
            .args(["enroll", "add", "carol-03", "--registry"])
            .arg(d.join("stack/registry.toml")))
        .stdout,
    )
    .unwrap();
    let code = code.lines().next().unwrap().trim().to_owned();
    let other = tempfile::tempdir().unwrap();
    let data = other.path().join("data");
    // The stack's lead key, trusted from outside the data directory (this build pins none).
    let lead = d.join("stack/keys/lead.pub");
    let out = without_keychain(&data)
        .args(["enroll", "join", &code, "--broker", &stack.broker])
        .env("VOXSEAL_TRUST_LEAD_KEY", &lead)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the enrollment code was not used"), "{err}");
    // The same code still works where the token can be kept.
    run(support::voxseal(&data)
        .args(["enroll", "join", &code, "--broker", &stack.broker])
        .env("VOXSEAL_TRUST_LEAD_KEY", &lead));
}

/// A manifest found under another contractor's prefix, or a payload under another prefix than
/// its manifest's contractor, is refused with exit 4 before anything is decrypted.
#[test]
fn open_refuses_a_manifest_under_another_contractors_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("training.key");
    run(support::voxseal(&d.join("data"))
        .args(["keygen", "-o"])
        .arg(&key));
    // A real manifest (the fuzz corpus's) says contractor seed-01.
    let manifest =
        std::fs::read(voxseal_testkit::repo_root().join("fuzz/corpus/manifest/sealed.json"))
            .unwrap();
    let put = |rel: &str| {
        let p = d.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &manifest).unwrap();
        p
    };
    let open = |manifest: &Path, payload: &str| {
        support::voxseal(&d.join("data"))
            .arg("open")
            .arg(d.join(payload))
            .arg("-i")
            .arg(&key)
            .arg("--manifest")
            .arg(manifest)
            .output()
            .unwrap()
    };
    let elsewhere = put("bucket/manifests/bob-02/2026/01/02/s.json");
    let out = open(
        &elsewhere,
        "bucket/features/bob-02/2026/01/02/s-0123456789abcdef.safetensors.age",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("under contractor bob-02's prefix") && err.contains("seed-01"),
        "{err}"
    );
    // The manifest in its own prefix, but the payload under another one.
    let own = put("bucket/manifests/seed-01/2026/01/02/s.json");
    let out = open(
        &own,
        "bucket/features/bob-02/2026/01/02/s-0123456789abcdef.safetensors.age",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("bob-02"), "{err}");
}

/// The data team's Python check in docs/operator-guide.md (run as written, with python3):
/// a manifest under another contractor's prefix stops it, one under its own passes.
#[cfg(unix)] // runs the guide's Python, which a Windows test under Wine cannot start
#[test]
fn the_documented_python_prefix_check_catches_a_foreign_manifest() {
    let guide =
        std::fs::read_to_string(voxseal_testkit::repo_root().join("docs/operator-guide.md"))
            .unwrap();
    let after = guide
        .split("check that every manifest's")
        .nth(1)
        .expect("the guide has the prefix check");
    let code = after
        .split("```python\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let manifest =
        std::fs::read(voxseal_testkit::repo_root().join("fuzz/corpus/manifest/sealed.json"))
            .unwrap();
    let python = voxseal_testkit::venv_python().unwrap_or_else(|| "python3".into());
    let check = |prefix: &str| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir
            .path()
            .join(format!("manifests/{prefix}/2026/01/02/s.json"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &manifest).unwrap();
        Command::new(&python)
            .args(["-c", code])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let foreign = check("bob-02");
    let err = String::from_utf8_lossy(&foreign.stderr);
    assert!(
        !foreign.status.success() && err.contains("skip it"),
        "{err}"
    );
    let own = check("seed-01");
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
}
