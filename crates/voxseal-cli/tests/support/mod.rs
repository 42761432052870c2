//! Shared by the tests of the `voxseal` binary (`crash.rs`, `bad_input.rs`, `cloud.rs`): the
//! dev stack as a child process, the binary with a hermetic environment, the bucket as the
//! admin sees it, and a scanner for plaintext audio or features left on disk.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use voxseal_core::capture::audio::{SyntheticKind, SyntheticSource};

/// `voxseal record` of a 3-second synthetic take, accepted (no microphone, no prompt).
pub const RECORD_SPEECH_3S: [&str; 7] = [
    "record",
    "--source",
    "synthetic:speech",
    "--fast",
    "--seconds",
    "3",
    "--accept",
];

/// The variable that makes a debug build of `voxseal` abort at a named point.
pub const KILL_AT: &str = voxseal_core::fault::ENV;

/// `voxseal` with its data directory at `data`, a file token store, and no colours. The lead key
/// of a test project (`<data>/../proj/lead.pub`) or dev stack (`<data>/../stack/keys/lead.pub`)
/// next to the data directory is trusted through `VOXSEAL_TRUST_LEAD_KEY`, as QA would.
pub fn voxseal(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voxseal"));
    for lead in ["proj/lead.pub", "stack/keys/lead.pub"] {
        let lead = data.with_file_name(lead);
        if lead.exists() {
            c.env("VOXSEAL_TRUST_LEAD_KEY", lead);
        }
    }
    c.env("VOXSEAL_DATA_DIR", data)
        .env("VOXSEAL_TOKEN_STORE", "file")
        .env("VOXSEAL_TOKEN_PASSPHRASE", "test passphrase")
        .env("NO_COLOR", "1")
        .env_remove(KILL_AT)
        .stdin(Stdio::null());
    c
}

/// Runs and demands success.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `voxseal dev-stack --join` on free ports, as a child process (stopped with SIGINT on drop).
pub struct DevStack {
    child: Child,
    /// The stack's state directory (bucket files, keys, registry).
    pub dir: PathBuf,
    /// The S3 endpoint URL.
    pub endpoint: String,
    /// The broker URL.
    pub broker: String,
    /// Admin access key and secret of the local endpoint.
    pub admin: (String, String),
}

/// What `voxseal dev-stack` prints on stderr once it is ready.
pub struct StackBanner {
    /// The S3 endpoint URL.
    pub endpoint: String,
    /// The broker URL.
    pub broker: String,
    /// Admin access key and secret of the local endpoint.
    pub admin: (String, String),
}

/// Spawns `cmd` (a `voxseal dev-stack ...` command) with stderr piped, reads its banner until it
/// says it is running (at most 60 s), and keeps draining stderr so the child never blocks.
pub fn spawn_dev_stack(mut cmd: Command) -> (Child, StackBanner) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut endpoint, mut broker, mut admin) = (None, None, None);
    let t0 = Instant::now();
    let mut seen = Vec::new();
    for line in &mut lines {
        let line = line.unwrap();
        seen.push(line.clone());
        let word = |after: &str| {
            line.split_once(after)
                .map(|(_, r)| r.split_whitespace().next().unwrap().to_owned())
        };
        if line.contains("S3 endpoint") {
            endpoint = word("S3 endpoint");
        } else if line.contains("   broker ") {
            broker = word("broker");
        } else if line.contains("AWS_ACCESS_KEY_ID=") {
            admin = Some((
                word("AWS_ACCESS_KEY_ID=").unwrap(),
                word("AWS_SECRET_ACCESS_KEY=").unwrap(),
            ));
        } else if line.contains("running; press Ctrl-C") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "dev stack did not start"
        );
    }
    std::thread::spawn(move || for _ in lines {});
    let said = || format!("the dev stack said:\n{}", seen.join("\n"));
    let banner = StackBanner {
        endpoint: endpoint.unwrap_or_else(|| panic!("no endpoint line; {}", said())),
        broker: broker.unwrap_or_else(|| panic!("no broker line; {}", said())),
        admin: admin.unwrap_or_else(|| panic!("no admin line; {}", said())),
    };
    (child, banner)
}

impl DevStack {
    /// Starts a stack in `<root>/stack` on free ports and sets up `data` for its demo
    /// contractor.
    pub fn start(root: &Path, data: &Path) -> Self {
        Self::start_on(root, data, 0, 0)
    }

    /// [`DevStack::start`] on the given ports (0: a free one): a stack started again on the
    /// ports of a stopped one is where its clients expect it.
    pub fn start_on(root: &Path, data: &Path, s3_port: u16, broker_port: u16) -> Self {
        let dir = root.join("stack");
        let mut cmd = voxseal(data);
        cmd.args(["dev-stack", "--dir"]).arg(&dir).args([
            "--s3-port",
            &s3_port.to_string(),
            "--broker-port",
            &broker_port.to_string(),
            "--join",
        ]);
        let (child, banner) = spawn_dev_stack(cmd);
        Self {
            child,
            dir,
            endpoint: banner.endpoint,
            broker: banner.broker,
            admin: banner.admin,
        }
    }

    /// Every object key in the bucket, read from the endpoint's directory (s3s-fs keeps one
    /// file per object under `<dir>/s3/<bucket>/<key>`), with its bytes' SHA-256.
    pub fn objects(&self) -> BTreeMap<String, String> {
        let root = self
            .dir
            .join("s3")
            .join(voxseal_localstack::devstack::BUCKET);
        let mut out = BTreeMap::new();
        for f in files_under(&root) {
            let key = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(key, sha256_hex(&std::fs::read(&f).unwrap()));
        }
        out
    }

    /// The AWS CLI as the endpoint's admin; `None` (a skip) when the CLI is not installed and not
    /// required.
    pub fn aws(&self, args: &[&str]) -> Option<serde_json::Value> {
        let exe = voxseal_testkit::require_tool("aws")?;
        let out = Command::new(exe)
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.admin.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.admin.1)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for DevStack {
    /// Ctrl-C on Unix (the stack stops its servers), at most 5 s; then, and on Windows (where a
    /// Unix `kill` cannot reach a Windows process id), it is killed.
    fn drop(&mut self) {
        #[cfg(unix)]
        {
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
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every regular file under `dir`, recursively (hidden ones too).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let ty = e.file_type().unwrap();
            if ty.is_dir() {
                stack.push(e.path());
            } else if ty.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Recognizes plaintext the app must never leave on disk: a WAV header, a safetensors header,
/// or any stretch of the synthetic voice's samples as the spool (f32) or the sealed WAV (16-bit)
/// would hold them.
pub struct PlaintextScanner {
    /// 32-byte needles by their first 4 bytes.
    needles: HashMap<[u8; 4], Vec<[u8; 32]>>,
    /// Which 2-byte prefixes start a needle or a marker: a cheap first filter (tests run
    /// unoptimized, and the data directory holds megabytes of ciphertext).
    first2: Vec<bool>,
}

/// What the scanner found in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    /// `RIFF....WAVE`.
    WavHeader,
    /// A safetensors header or tensor name.
    Safetensors,
    /// Samples of the synthetic voice (f32 or 16-bit).
    Pcm,
}

const MARKERS: [(&[u8], Finding); 3] = [
    (b"RIFF", Finding::WavHeader),
    (b"{\"__metadata__\"", Finding::Safetensors),
    (b"\"log_mel\"", Finding::Safetensors),
];

impl PlaintextScanner {
    /// Needles every 50 ms across the first `seconds` of `synthetic:speech` at `rate`.
    pub fn for_synthetic_speech(rate: u32, seconds: u32) -> Self {
        let s = SyntheticSource::generate(SyntheticKind::Speech, rate, (rate * seconds) as usize);
        let step = rate as usize / 20;
        let mut needles: HashMap<[u8; 4], Vec<[u8; 32]>> = HashMap::new();
        let mut first2 = vec![false; 1 << 16];
        let mut add = |n: [u8; 32]| {
            first2[u16::from_le_bytes([n[0], n[1]]) as usize] = true;
            needles
                .entry(n[..4].try_into().unwrap())
                .or_default()
                .push(n)
        };
        for start in (0..s.len() - 16).step_by(step) {
            let mut f = [0u8; 32];
            for (i, x) in s[start..start + 8].iter().enumerate() {
                f[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
            }
            add(f);
            let mut p = [0u8; 32];
            for (i, x) in s[start..start + 16].iter().enumerate() {
                p[2 * i..2 * i + 2]
                    .copy_from_slice(&voxseal_core::sealing::wav::f32_to_i16(*x).to_le_bytes());
            }
            add(p);
        }
        for (m, _) in MARKERS {
            first2[u16::from_le_bytes([m[0], m[1]]) as usize] = true;
        }
        Self { needles, first2 }
    }

    /// What `bytes` holds that it must not.
    pub fn scan(&self, bytes: &[u8]) -> Vec<Finding> {
        let mut found = Vec::new();
        for i in 0..bytes.len().saturating_sub(1) {
            if !self.first2[u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize] {
                continue;
            }
            let rest = &bytes[i..];
            for (m, what) in MARKERS {
                let whole = match what {
                    Finding::WavHeader => rest.len() >= 12 && &rest[8..12] == b"WAVE",
                    _ => true,
                };
                if whole && rest.starts_with(m) && !found.contains(&what) {
                    found.push(what);
                }
            }
            if rest.len() >= 32
                && !found.contains(&Finding::Pcm)
                && self
                    .needles
                    .get(&<[u8; 4]>::try_from(&rest[..4]).unwrap())
                    .is_some_and(|v| v.iter().any(|n| n[..] == rest[..32]))
            {
                found.push(Finding::Pcm);
            }
        }
        found.sort();
        found
    }

    /// Every file under `dir` with what it holds; empty when the directory is clean.
    pub fn scan_tree(&self, dir: &Path) -> Vec<(PathBuf, Vec<Finding>)> {
        files_under(dir)
            .into_iter()
            .filter_map(|f| {
                let found = self.scan(&std::fs::read(&f).ok()?);
                (!found.is_empty()).then_some((f, found))
            })
            .collect()
    }
}

/// A small, seeded, reproducible random number generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
