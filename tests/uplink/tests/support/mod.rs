//! What the uplink tests share: the emulated link (or the reason it cannot be made here), the dev
//! stack in the servers' namespace, and takes sealed with the real CLI. Each test file compiles
//! this module on its own and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use voxseal_uplink::{DSL, EmulatedLink};

/// The dev stack's ports: its S3 endpoint and its broker.
#[derive(Clone, Copy)]
pub struct Ports {
    pub s3: u16,
    pub broker: u16,
}

/// The ports in the servers' namespace, where nothing else listens.
pub const DEFAULT_PORTS: Ports = Ports {
    s3: 9000,
    broker: 8787,
};

/// The CLI the tests run (`scripts/test.sh` builds it before the tests).
pub fn voxseal() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| voxseal_testkit::repo_root().join("target"));
    let p = target.join("debug/voxseal");
    assert!(
        p.is_file(),
        "{} is missing: `cargo build -p voxseal-cli` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Why the link cannot be made here, or `None`; with VOXSEAL_REQUIRE_NETNS=1 (CI) a reason
/// fails the test instead.
pub fn netns_unavailable() -> Option<String> {
    let why = EmulatedLink::unavailable()?;
    assert!(
        std::env::var("VOXSEAL_REQUIRE_NETNS").as_deref() != Ok("1"),
        "VOXSEAL_REQUIRE_NETNS=1 but {why}"
    );
    eprintln!("SKIPPED: {why}");
    Some(why)
}

/// A DSL link forwarding [`DEFAULT_PORTS`] from A to B, its namespaces named after `prefix` and
/// this process, or `None` (said) where namespaces cannot be made.
pub fn link_or_skip(prefix: &str) -> Option<EmulatedLink> {
    start_link(prefix, DEFAULT_PORTS, EmulatedLink::start)
}

/// [`link_or_skip`] with `ports`, which are also reachable from this namespace across the link.
pub fn exposed_link_or_skip(prefix: &str, ports: Ports) -> Option<EmulatedLink> {
    start_link(prefix, ports, EmulatedLink::start_exposing)
}

type Start = fn(&Path, &str, &voxseal_uplink::Profile, &[u16]) -> Result<EmulatedLink, String>;

fn start_link(prefix: &str, ports: Ports, start: Start) -> Option<EmulatedLink> {
    if netns_unavailable().is_some() {
        return None;
    }
    let netem = PathBuf::from(env!("CARGO_BIN_EXE_voxseal-netem"));
    let name = format!("{prefix}{}", std::process::id() % 10_000);
    Some(start(&netem, &name, &DSL, &[ports.s3, ports.broker]).unwrap())
}

/// The dev stack's process, killed when dropped.
pub struct DevStack(Child);

impl Drop for DevStack {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment every contractor command runs with.
pub fn env<'a>(cmd: &'a mut Command, work: &Path) -> &'a mut Command {
    cmd.env("VOXSEAL_DATA_DIR", work.join("data"))
        .env("VOXSEAL_TOKEN_STORE", "file")
        .env("VOXSEAL_TOKEN_PASSPHRASE", "uplink")
        .env("VOXSEAL_TRUST_LEAD_KEY", work.join("stack/keys/lead.pub"))
        .env("NO_COLOR", "1")
}

/// The command's standard output, after asserting it succeeded.
#[track_caller]
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts the dev stack in the servers' namespace (with `extra` arguments) and enrolls the data
/// directory.
pub fn start_stack(link: &EmulatedLink, work: &Path, ports: Ports, extra: &[&str]) -> DevStack {
    let mut cmd = EmulatedLink::command_in(&link.ns_b(), &voxseal());
    env(&mut cmd, work)
        .args([
            "dev-stack",
            "--dir",
            work.join("stack").to_str().unwrap(),
            "--s3-port",
            &ports.s3.to_string(),
            "--broker-port",
            &ports.broker.to_string(),
            "--join",
        ])
        .args(extra);
    let err = std::fs::File::create(work.join("stack.err")).unwrap();
    let child = cmd.stderr(err).stdout(Stdio::null()).spawn().unwrap();
    let stack = DevStack(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(work.join("stack.err")).unwrap_or_default();
        if log.contains("running; press Ctrl-C") {
            return stack;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "the dev stack did not start: {}",
        std::fs::read_to_string(work.join("stack.err")).unwrap_or_default()
    );
}

/// Seals `takes` takes of `seconds` (at most the demo project's 120 s) of pink noise at `rate`
/// Hz; returns the payload bytes queued.
pub fn seal_takes(work: &Path, takes: usize, seconds: u32, rate: u32) -> u64 {
    let wav = work.join("take.wav");
    let sox = voxseal_testkit::require_tool("sox").expect("sox (scripts/setup.sh --test)");
    for _ in 0..takes {
        let synth = Command::new(&sox)
            .args(["-n", "-r", &rate.to_string(), "-c", "1", "-b", "16"])
            .arg(&wav)
            .args(["synth", &seconds.to_string(), "pinknoise", "vol", "0.1"])
            .output()
            .unwrap();
        ok(synth, "sox");
        let mut seal = Command::new(voxseal());
        env(&mut seal, work).args(["seal", wav.to_str().unwrap(), "--accept-failed"]);
        ok(seal.output().unwrap(), "voxseal seal");
    }
    outbox_bytes(&work.join("data/outbox"))
}

/// Waits for `child` to exit, for 10 minutes at most.
pub fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the upload did not end in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The bytes of the objects the outbox's items put in the bucket: payloads and manifests.
pub fn outbox_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for item in std::fs::read_dir(dir).unwrap().flatten() {
        if !item.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(item.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".age") || name == "manifest.json" {
                total += f.metadata().unwrap().len();
            }
        }
    }
    total
}
