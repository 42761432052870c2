//! Test support for Voxseal's crates: a dev-dependency, never a dependency.
//!
//! - [`MotoServer`]: moto's server (from the test venv) on 127.0.0.1 with IAM enforcement on and an
//!   admin user with an allow-all policy, killed when dropped.
//! - [`aws_cli`]: the AWS CLI from the test venv against any endpoint, with explicit credentials
//!   and no user configuration.
//! - [`require_tool`], [`venv_python`]: find test tools, or skip (or fail, with
//!   `VOXSEAL_REQUIRE_TOOLS=1`) when they are missing.
//!
//! ```no_run
//! let Some(moto) = voxseal_testkit::MotoServer::try_start() else { return };
//! let out = moto.aws(&["s3api", "create-bucket", "--bucket", "b1"]);
//! assert!(out.status.success());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a missing tool says.
const HINT: &str = "run scripts/setup.sh --test";

/// The repository's root directory: the nearest one holding `Cargo.lock` above the package
/// whose test is running.
///
/// The package directory is read from `CARGO_MANIFEST_DIR` as cargo sets it when it runs the
/// test, not compiled in with `env!`: the target directory is shared, and a test binary cargo
/// built for another checkout of the same tree (which it may reuse as fresh) would carry that
/// checkout's path. The compiled-in path is the fallback when the binary runs outside cargo.
pub fn repo_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or_else(|| panic!("no Cargo.lock above {}", package.display()))
        .to_path_buf()
}

/// True when `VOXSEAL_REQUIRE_TOOLS=1`: a missing tool is then a failure instead of a skip.
pub fn tools_required() -> bool {
    std::env::var("VOXSEAL_REQUIRE_TOOLS").as_deref() == Ok("1")
}

fn missing(what: &str) {
    assert!(!tools_required(), "{what} is required: {HINT}");
    eprintln!("skipped: {what} not installed ({HINT})");
}

/// False in a Windows test process: under Wine it cannot start the test venv's Linux programs
/// (the attempt fails with "Invalid handle"), so the cross-checks that need them skip there.
fn host_tools_runnable(what: &str) -> bool {
    if cfg!(windows) {
        assert!(
            !tools_required(),
            "{what} cannot run in a Windows test process"
        );
        eprintln!("skipped: {what} (a Windows test process cannot start the test venv's programs)");
        return false;
    }
    true
}

/// The test venv's Python (`VOXSEAL_PYTHON` or `<repo>/.venv/bin/python`).
///
/// When it is missing, or in a Windows test process: panics if `VOXSEAL_REQUIRE_TOOLS=1`, else
/// prints a skip line and returns `None`.
pub fn venv_python() -> Option<PathBuf> {
    if !host_tools_runnable("the test venv's Python") {
        return None;
    }
    let p = std::env::var_os("VOXSEAL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    if p.is_file() {
        return Some(p);
    }
    missing(&format!("the test venv's Python ({})", p.display()));
    None
}

/// Finds a tool: first in `<repo>/.venv/bin`, then on `PATH`.
///
/// When it is missing, or in a Windows test process: panics with "run scripts/setup.sh --test" if
/// `VOXSEAL_REQUIRE_TOOLS=1`, else prints a skip line and returns `None`.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    if !host_tools_runnable(name) {
        return None;
    }
    let venv = repo_root().join(".venv/bin").join(name);
    if venv.is_file() {
        return Some(venv);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        missing(name);
    }
    on_path
}

/// Decrypts `file` with the `age` CLI at `age` (`age -d -i identity file`): the plaintext, or
/// what age printed when it refused.
pub fn age_decrypt(age: &Path, identity: &Path, file: &Path) -> Result<Vec<u8>, String> {
    let out = Command::new(age)
        .args(["-d", "-i"])
        .arg(identity)
        .arg(file)
        .output()
        .expect("running age");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Where [`free_port`] looks: below the ephemeral ranges of Linux (32768-60999) and Windows
/// (49152-65535), so that no outgoing connection takes a port a test releases and binds again
/// later (a stack stopped and restarted on the same ports).
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_768;

/// A TCP port on 127.0.0.1 that was free a moment ago: one this process has not handed out
/// before, outside the ephemeral range, found by binding it and releasing it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    let span = TEST_PORTS.len();
    // Processes start at different places (the pid), so concurrent ones rarely meet.
    let _ = NEXT.compare_exchange(
        usize::MAX,
        std::process::id() as usize * 7_919 % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = TEST_PORTS.start + offset as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 in {TEST_PORTS:?}")
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// An AWS key pair (and session token, for temporary credentials).
#[derive(Clone)]
pub struct AwsKeys {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsKeys {
    /// The environment variables the AWS SDKs and CLI read, with user configuration switched off
    /// (no profile, no config or credentials file, no instance metadata).
    pub fn env(&self, region: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            ("AWS_REGION", region.to_owned()),
            ("AWS_DEFAULT_REGION", region.to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_PAGER", String::new()),
        ];
        if let Some(t) = &self.session_token {
            env.push(("AWS_SESSION_TOKEN", t.clone()));
        }
        env
    }
}

/// Runs `<repo>/.venv/bin/aws <args>` against `endpoint` with `creds` (region `us-east-1`), with
/// the user's AWS configuration switched off. Returns the output whatever the exit status.
///
/// Panics when the CLI is not installed (check with [`require_tool`]`("aws")` first to skip).
pub fn aws_cli(args: &[&str], endpoint: &str, creds: &AwsKeys) -> Output {
    let aws = repo_root().join(".venv/bin/aws");
    let mut cmd = Command::new(&aws);
    cmd.args(args)
        .arg("--endpoint-url")
        .arg(endpoint)
        .arg("--output")
        .arg("json")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null());
    for (k, v) in creds.env(MotoServer::REGION) {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running {}: {e} ({HINT})", aws.display()))
}

/// moto's server on `127.0.0.1:<free port>` with IAM enforcement on: every request after setup
/// must be signed with known credentials and allowed by the caller's IAM policies.
///
/// Start-up makes, within moto's unauthenticated allowance (`INITIAL_NO_AUTH_ACTION_COUNT`), an
/// IAM user `admin` with an allow-all inline policy and an access key: [`Self::admin_credentials`].
/// The process is killed when this value is dropped.
pub struct MotoServer {
    child: Child,
    port: u16,
    admin: AwsKeys,
    _dir: tempfile::TempDir,
    log_path: PathBuf,
}

/// The unauthenticated requests setup makes: CreateUser, PutUserPolicy, CreateAccessKey.
const SETUP_ACTIONS: u32 = 3;

const SETUP_SCRIPT: &str = r#"
import json, sys
import boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="admin")
iam.put_user_policy(UserName="admin", PolicyName="allow-all",
                    PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}')
key = iam.create_access_key(UserName="admin")["AccessKey"]
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"#;

impl MotoServer {
    /// The region tests use with moto.
    pub const REGION: &'static str = "us-east-1";
    /// moto's default account id.
    pub const ACCOUNT_ID: &'static str = "123456789012";

    /// Starts moto, or returns `None` after printing a skip line when moto or the venv is missing
    /// (panics instead with `VOXSEAL_REQUIRE_TOOLS=1`).
    pub fn try_start() -> Option<MotoServer> {
        require_tool("moto_server")?;
        venv_python()?;
        Some(Self::start())
    }

    /// Starts moto and creates the admin user; panics when anything fails (with moto's output).
    pub fn start() -> MotoServer {
        let moto = repo_root().join(".venv/bin/moto_server");
        assert!(moto.is_file(), "{} is missing: {HINT}", moto.display());
        let python = venv_python().unwrap_or_else(|| panic!("the test venv is missing: {HINT}"));
        let dir = tempfile::tempdir().expect("temp dir for moto's log");
        let log_path = dir.path().join("moto.log");
        // A port picked by bind(0) can be taken by someone else before moto binds it: retry.
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(&log_path).expect("moto log file");
            let mut child = Command::new(&moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_ACTIONS.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("moto log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", moto.display()));
            if wait_ready(&mut child, port, Duration::from_secs(30)) {
                let mut server = MotoServer {
                    child,
                    port,
                    admin: AwsKeys {
                        access_key_id: String::new(),
                        secret_access_key: String::new(),
                        session_token: None,
                    },
                    _dir: dir,
                    log_path,
                };
                server.admin = server.create_admin(&python);
                return server;
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("moto did not start:\n{last_log}");
    }

    fn create_admin(&self, python: &Path) -> AwsKeys {
        let out = Command::new(python)
            .arg("-c")
            .arg(SETUP_SCRIPT)
            .arg(self.endpoint_url())
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .output()
            .expect("running the moto setup script");
        assert!(
            out.status.success(),
            "moto setup failed: {}\nmoto log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("the setup script prints JSON");
        AwsKeys {
            access_key_id: v["id"].as_str().expect("access key id").to_owned(),
            secret_access_key: v["secret"].as_str().expect("secret").to_owned(),
            session_token: None,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin user's key pair (allow-all policy).
    pub fn admin_credentials(&self) -> &AwsKeys {
        &self.admin
    }

    /// The admin user's ARN.
    pub fn admin_arn(&self) -> String {
        format!("arn:aws:iam::{}:user/admin", Self::ACCOUNT_ID)
    }

    /// Runs the AWS CLI against this server as the admin.
    pub fn aws(&self, args: &[&str]) -> Output {
        aws_cli(args, &self.endpoint_url(), &self.admin)
    }

    /// Runs the AWS CLI as the admin and panics (with the CLI's and moto's output) unless it
    /// succeeds; returns its stdout parsed as JSON (`null` when empty).
    pub fn aws_ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {}: {}\n{}\nmoto log (tail):\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 4000)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&out.stdout).expect("the AWS CLI prints JSON")
        }
    }

    /// As the admin: a role the admin may assume (with a source identity) and returns its ARN.
    /// Compact JSON: with IAM on, moto's SigV4 check fails on form-encoded spaces.
    pub fn create_assumable_role(&self, role: &str) -> String {
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": self.admin_arn()},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            }],
        })
        .to_string();
        self.aws_ok(&[
            "iam",
            "create-role",
            "--role-name",
            role,
            "--assume-role-policy-document",
            &trust,
        ]);
        format!("arn:aws:iam::{}:role/{role}", Self::ACCOUNT_ID)
    }

    /// What moto printed so far (for failure messages).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

/// Waits until moto accepts connections; false if it exits or the time runs out.
fn wait_ready(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if wait_for_port(port, Duration::from_millis(250)) {
            return true;
        }
    }
    false
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MotoServer")
            .field("endpoint", &self.endpoint_url())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_root_holds_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("crates/voxseal-testkit").is_dir());
    }

    #[test]
    fn free_ports_are_ports() {
        // Not re-bound here: another test may legitimately take it first (that race is why
        // `MotoServer::start` retries).
        assert!(free_port() >= 1024);
    }

    /// A port from the ephemeral range can be taken by any outgoing connection of a test running
    /// alongside while the server that had it is down (a Wine CI run lost a restarted dev stack
    /// that way, most likely): test ports never come from it.
    #[test]
    #[cfg(target_os = "linux")]
    fn free_ports_are_outside_the_ephemeral_range() {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let mut bounds = range.split_whitespace().map(|p| p.parse::<u16>().unwrap());
        let (low, high) = (bounds.next().unwrap(), bounds.next().unwrap());
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        assert!(
            ports.iter().all(|p| !(low..=high).contains(p)),
            "{ports:?} vs ephemeral {low}-{high}"
        );
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "handed out twice: {ports:?}");
    }

    #[test]
    fn moto_smoke() {
        let Some(moto) = MotoServer::try_start() else {
            return;
        };
        // Unsigned or unknown credentials are refused now that setup is done.
        let stranger = AwsKeys {
            access_key_id: "AKIASTRANGER0000000".into(),
            secret_access_key: "x".into(),
            session_token: None,
        };
        let out = aws_cli(&["s3api", "list-buckets"], &moto.endpoint_url(), &stranger);
        assert!(!out.status.success(), "unknown keys must be refused");
        // The admin can do things.
        moto.aws_ok(&["s3api", "create-bucket", "--bucket", "smoke-bucket"]);
        let v = moto.aws_ok(&["s3api", "list-buckets"]);
        assert_eq!(v["Buckets"][0]["Name"], "smoke-bucket");
    }
}
