//! Emulated home uplinks for the upload tests (issue 16; docs/uplink.md).
//!
//! This machine's kernel has no `netem` qdisc, so the link is in user space: `voxseal-netem`
//! creates two network namespaces (`<name>a`, the contractor's laptop, and `<name>b`, the
//! servers), a TUN device in each (10.77.0.1 and 10.77.0.2), and moves IP packets between them
//! with a profile's rate, delay, jitter and loss, and outages on command. Ports given with
//! `--forward` are reachable at 127.0.0.1 in A and served from 127.0.0.1 in B, so the real
//! binaries (`voxseal dev-stack`, `voxseal upload`, the AWS CLI) run unchanged on both sides.
//! Ports given with `--expose` are also reachable at 127.0.0.1 where the emulator runs (the
//! desktop app under WebDriver, which cannot run inside A), connecting across the link from A.
//! [`EmulatedLink`] starts it for a test and removes the namespaces when dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

pub mod forward;
pub mod link;
pub mod sys;

/// A home uplink, as issue 16 names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Short name (`dsl`, `wifi`, `hotspot`).
    pub name: &'static str,
    /// Upload rate, kbit/s.
    pub up_kbit: u64,
    /// Download rate, kbit/s.
    pub down_kbit: u64,
    /// Round-trip time, ms (half each way).
    pub rtt_ms: u64,
    /// Jitter added each way, ms.
    pub jitter_ms: u64,
    /// Random loss each way, percent.
    pub loss_pct: f64,
}

/// DSL: 10 Mbit/s up, 40 ms RTT, 0.1% loss.
pub const DSL: Profile = Profile {
    name: "dsl",
    up_kbit: 10_000,
    down_kbit: 50_000,
    rtt_ms: 40,
    jitter_ms: 0,
    loss_pct: 0.1,
};

/// Busy Wi-Fi: 5 Mbit/s up, 80 ms RTT, 1% loss, jitter.
pub const WIFI: Profile = Profile {
    name: "wifi",
    up_kbit: 5_000,
    down_kbit: 20_000,
    rtt_ms: 80,
    jitter_ms: 20,
    loss_pct: 1.0,
};

/// Mobile hotspot: 2 Mbit/s up, 150 ms RTT, 2% loss.
pub const HOTSPOT: Profile = Profile {
    name: "hotspot",
    up_kbit: 2_000,
    down_kbit: 10_000,
    rtt_ms: 150,
    jitter_ms: 10,
    loss_pct: 2.0,
};

/// Every profile.
pub const PROFILES: [Profile; 3] = [DSL, WIFI, HOTSPOT];

impl Profile {
    /// The profile named `name`.
    pub fn named(name: &str) -> Option<Profile> {
        PROFILES.into_iter().find(|p| p.name == name)
    }

    /// The link shape of the uplink (A to B) or the downlink (B to A).
    pub fn shape(&self, uplink: bool) -> link::Shape {
        link::Shape {
            rate_bps: 1000 * if uplink { self.up_kbit } else { self.down_kbit },
            delay: Duration::from_millis(self.rtt_ms / 2),
            jitter: Duration::from_millis(self.jitter_ms),
            loss: self.loss_pct / 100.0,
        }
    }
}

/// The emulator's counters for both directions.
#[derive(Debug, Clone)]
pub struct LinkStats {
    /// A to B (the contractor's uplink): `sent_bytes`, `delivered_bytes`, `lost`, `outage`, `queue`.
    pub up: serde_json::Value,
    /// B to A.
    pub down: serde_json::Value,
}

impl LinkStats {
    /// IP bytes the contractor's side put on the uplink (what its interface sent).
    pub fn up_sent_bytes(&self) -> u64 {
        self.up["sent_bytes"].as_u64().unwrap_or(0)
    }
}

/// A running `voxseal-netem` and its two namespaces.
pub struct EmulatedLink {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl EmulatedLink {
    /// Why namespaces cannot be made here (not root, no `ip`, no /dev/net/tun), or `None`.
    pub fn unavailable() -> Option<String> {
        let root = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            return Some("network namespaces need root (CI runs as root)".into());
        }
        if !Path::new("/dev/net/tun").exists() {
            return Some("no /dev/net/tun".into());
        }
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(o) if o.status.success() => None,
            _ => Some("`ip netns` does not work here (iproute2 missing?)".into()),
        }
    }

    /// Starts the emulator `bin` with `profile`, namespaces `<name>a`/`<name>b`, and `ports`
    /// forwarded from A's loopback to B's.
    pub fn start(bin: &Path, name: &str, profile: &Profile, ports: &[u16]) -> Result<Self, String> {
        Self::spawn(bin, name, profile, "--forward", ports)
    }

    /// [`start`](Self::start), with `ports` also reachable on this namespace's 127.0.0.1 across
    /// the link: for a program that cannot run inside A (the desktop app under WebDriver).
    pub fn start_exposing(
        bin: &Path,
        name: &str,
        profile: &Profile,
        ports: &[u16],
    ) -> Result<Self, String> {
        Self::spawn(bin, name, profile, "--expose", ports)
    }

    fn spawn(
        bin: &Path,
        name: &str,
        profile: &Profile,
        flag: &str,
        ports: &[u16],
    ) -> Result<Self, String> {
        let mut cmd = Command::new(bin);
        cmd.args(["--name", name, "--profile", profile.name]);
        for p in ports {
            cmd.args([flag, &p.to_string()]);
        }
        let mut child = (cmd.stdin(Stdio::piped()).stdout(Stdio::piped()))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut link = Self {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
        };
        match link.read_line().as_deref() {
            Some("ready") => Ok(link),
            other => Err(format!("voxseal-netem did not start: {other:?}")),
        }
    }

    fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line.trim().to_owned()),
            _ => None,
        }
    }

    fn command(&mut self, cmd: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{cmd}");
            let _ = stdin.flush();
        }
    }

    /// The contractor's namespace.
    pub fn ns_a(&self) -> String {
        format!("{}a", self.name)
    }

    /// The servers' namespace.
    pub fn ns_b(&self) -> String {
        format!("{}b", self.name)
    }

    /// `program` run inside namespace `ns` (`ip netns exec`).
    pub fn command_in(ns: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    /// Drops every packet both ways from now on.
    pub fn down(&mut self) {
        self.command("down");
    }

    /// Ends an outage.
    pub fn up(&mut self) {
        self.command("up");
    }

    /// The counters now.
    pub fn stats(&mut self) -> LinkStats {
        self.command("stats");
        let v: serde_json::Value = self
            .read_line()
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or_default();
        LinkStats {
            up: v["up"].clone(),
            down: v["down"].clone(),
        }
    }
}

impl Drop for EmulatedLink {
    fn drop(&mut self) {
        // Closing stdin asks the emulator to remove its namespaces and exit.
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for ns in [self.ns_a(), self.ns_b()] {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}
