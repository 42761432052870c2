//! Issue 16: an upload over an emulated DSL uplink with two outages of 30 s. The real binaries
//! in their real roles: `voxseal dev-stack` (embedded S3 endpoint and broker) in the servers'
//! namespace, `voxseal upload` in the contractor's, the emulated link between them.
//!
//! Holds: the upload finishes and the bucket has every object; the bytes the contractor's side
//! put on the uplink (IP bytes, retransmissions included) stay within 10% of the payload, so an
//! outage costs no acknowledged part; and the CLI says it is waiting for the network during an
//! outage, and when the network is back.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{DEFAULT_PORTS, env, link_or_skip, seal_takes, start_stack, voxseal, wait_bounded};
use voxseal_uplink::{DSL, EmulatedLink};

#[test]
fn an_upload_through_two_30_s_outages_resends_nothing_acknowledged() {
    let Some(mut link) = link_or_skip("vxo") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let _stack = start_stack(&link, work, DEFAULT_PORTS, &[]);
    // 120 s at 96 kHz: raw audio of 23 MB goes up in three 8 MiB parts, features in one PUT.
    let payload = seal_takes(work, 1, 120, 96_000);
    eprintln!("payload {payload} bytes");

    let mut upload = EmulatedLink::command_in(&link.ns_a(), &voxseal());
    env(&mut upload, work).arg("upload");
    let log = std::fs::File::create(work.join("upload.err")).unwrap();
    let started = Instant::now();
    let mut child = upload.stderr(log).stdout(Stdio::null()).spawn().unwrap();
    // Outages at 25% and 60% of the payload's time on the link.
    let on_link = Duration::from_secs_f64(payload as f64 * 8.0 / (DSL.up_kbit * 1000) as f64);
    for at in [0.25, 0.60] {
        let due =
            started + on_link.mul_f64(at) + Duration::from_secs(if at > 0.5 { 30 } else { 0 });
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        eprintln!("outage at {:.0} s", started.elapsed().as_secs_f64());
        link.down();
        std::thread::sleep(Duration::from_secs(30));
        link.up();
    }
    let status = wait_bounded(&mut child);
    let wall = started.elapsed();
    let stats = link.stats();
    let log = std::fs::read_to_string(work.join("upload.err")).unwrap();
    let audit = std::fs::read_to_string(work.join("data/audit.log")).unwrap_or_default();
    for line in audit
        .lines()
        .filter(|l| l.contains("\"upload.") || l.contains("item.uploaded"))
    {
        eprintln!("{line}");
    }
    eprintln!(
        "upload: {status} in {:.1} s; uplink {} bytes for {payload} ({:.3}x); {:?}\n{log}",
        wall.as_secs_f64(),
        stats.up_sent_bytes(),
        stats.up_sent_bytes() as f64 / payload as f64,
        stats.up
    );
    assert!(status.success(), "voxseal upload failed:\n{log}");
    assert!(
        stats.up_sent_bytes() as f64 <= payload as f64 * 1.10,
        "{} bytes on the uplink for {payload} bytes of payload",
        stats.up_sent_bytes()
    );
    // An outage is said while it lasts, and its end too. Not necessarily both: socket buffers
    // on the contractor's side take up to a few MB while the link is down, which hides an outage
    // from the uploader for as long as they take to fill (docs/uplink.md).
    let waits = log.matches("waiting for the network:").count();
    let backs = log.matches("the network is back").count();
    assert!(
        waits >= 1 && backs == waits,
        "{waits} waits, {backs} ends:\n{log}"
    );
}

/// Issue 16: a laptop that sleeps (the upload process stopped) for longer than its credentials
/// live wakes up, gets fresh credentials and finishes, with no failure reported.
#[test]
fn an_upload_asleep_past_its_credentials_resumes_with_fresh_ones() {
    let Some(link) = link_or_skip("vxs") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let _stack = start_stack(&link, work, DEFAULT_PORTS, &["--grant-secs", "20"]);
    let payload = seal_takes(work, 1, 120, 96_000);
    let mut upload = EmulatedLink::command_in(&link.ns_a(), &voxseal());
    env(&mut upload, work).arg("upload");
    let log = std::fs::File::create(work.join("upload.err")).unwrap();
    let mut child = upload.stderr(log).stdout(Stdio::null()).spawn().unwrap();
    // `ip netns exec` enters the namespace and execs voxseal: the child is voxseal itself.
    std::thread::sleep(Duration::from_secs(5));
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let out = Command::new("kill").args([sig, &pid]).output().unwrap();
        assert!(out.status.success(), "kill {sig} {pid}: {out:?}");
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(45));
    signal("-CONT");
    let status = wait_bounded(&mut child);
    let log = std::fs::read_to_string(work.join("upload.err")).unwrap();
    eprintln!("{status}; {payload} bytes\n{log}");
    assert!(
        status.success(),
        "voxseal upload failed after waking:\n{log}"
    );
    assert!(log.contains("1 uploaded, 0 failed, 0 queued"), "{log}");
    assert!(
        !log.to_lowercase().contains("error"),
        "an error was shown:\n{log}"
    );
}
