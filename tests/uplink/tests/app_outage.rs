//! Issue 16: the desktop app uploading its queue over an emulated DSL uplink through an outage.
//! The real binaries in their real roles: `voxseal dev-stack` in the servers' namespace, the
//! release-style app (lead key pinned, no demo; `scripts/test.sh` builds it) under WebDriver,
//! its connections carried across the link (the app cannot run inside the contractor's
//! namespace: WebKitWebDriver reaches it on this namespace's loopback, so the link's ports are
//! exposed here instead; docs/uplink.md).
//!
//! The contractor's data directory is enrolled and holds a sealed take (the CLI seals it, as QA's
//! headless path does: recording two minutes through the app would only add time); the app starts
//! and uploads it in the background. Holds: once some bytes are acknowledged the queue screen
//! shows the time left; when the link goes down it says it is waiting for the network instead
//! (screenshot `18-uplink-waiting`), and the progress does not move on until the link is back;
//! after the outage it drains with nothing left on the machine; the overall progress never went
//! back by more than one part; and the uplink carried at most 10% more IP bytes than the payload.

mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use support::{Ports, exposed_link_or_skip, seal_takes, start_stack};
use voxseal_e2e::{Desktop, Tools};
use voxseal_uplink::EmulatedLink;

/// The uploader's part size: the most a progress bar may go back (a part abandoned and resent).
const PART_BYTES: u64 = 8 << 20;
const OUTAGE: Duration = Duration::from_secs(30);

/// Two ports free on this namespace's loopback (the link's exposed side).
fn free_ports() -> Ports {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    Ports {
        s3: a.local_addr().unwrap().port(),
        broker: b.local_addr().unwrap().port(),
    }
}

/// Gives the dev stack the lead key the app was built to trust (it keeps a key it finds).
fn pin_stack_key(stack: &Path, lead: &Path) {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let keys = stack.join("keys");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&keys)
        .unwrap();
    std::fs::copy(lead.join("keys/lead.key"), keys.join("lead.key")).unwrap();
    std::fs::set_permissions(
        keys.join("lead.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::copy(lead.join("lead.pub"), keys.join("lead.pub")).unwrap();
}

/// The overall progress the queue screen shows, 0..1.
async fn overall(d: &Desktop) -> Result<f64> {
    let v = d.attr("queue-overall", "data-value").await?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0.0))
}

/// Overall progress read through the run: the largest step back seen.
#[derive(Default)]
struct ProgressWatch {
    last: f64,
    worst_back: f64,
}

impl ProgressWatch {
    async fn read(&mut self, d: &Desktop) -> Result<f64> {
        let now = overall(d).await?;
        self.worst_back = self.worst_back.max(self.last - now);
        self.last = now;
        Ok(now)
    }

    /// Reads every 250 ms until `done` holds for the value read, for `limit` at most.
    async fn until(
        &mut self,
        d: &Desktop,
        limit: Duration,
        what: &str,
        mut done: impl AsyncFnMut(&Desktop, f64) -> Result<bool>,
    ) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let p = self.read(d).await?;
            if done(d, p).await? {
                return Ok(started.elapsed());
            }
            ensure!(
                started.elapsed() < limit,
                "{what}: not within {limit:?} (progress {p:.3})"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn shown(d: &Desktop, id: &str) -> bool {
    d.by_id(id).await.is_ok()
}

/// The queue through the outage; returns the progress watch.
async fn through_outage(d: &Desktop, link: &mut EmulatedLink) -> Result<ProgressWatch> {
    let mut watch = ProgressWatch::default();
    d.wait_id("nav-queue", Duration::from_secs(45)).await?;
    d.click("nav-queue").await?;
    d.wait_id("queue-overall", Duration::from_secs(10)).await?;
    let limit = Duration::from_secs(60);
    watch
        .until(d, limit, "some bytes acknowledged", async |_, p| {
            Ok(p >= 0.05)
        })
        .await?;
    watch
        .until(d, limit, "the time left shown", async |d, _| {
            Ok(shown(d, "queue-eta").await)
        })
        .await?;
    d.log(format_args!("{}", d.text("queue-eta").await?));
    link.down();
    let down = Instant::now();
    d.log(format_args!("link down at {:.3}", watch.last));
    let at = watch.last;
    let noticed = watch
        .until(d, limit, "waiting for the network shown", async |d, _| {
            Ok(shown(d, "waiting-for-network").await)
        })
        .await?;
    d.log(format_args!(
        "shown {:.1} s into the outage",
        noticed.as_secs_f64()
    ));
    d.screenshot("18-uplink-waiting").await?;
    let text = d.text("waiting-for-network").await?;
    ensure!(text.to_lowercase().contains("network"), "{text:?}");
    ensure!(
        !shown(d, "queue-eta").await,
        "a time left is shown while nothing moves"
    );
    let held = watch.read(d).await?;
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    let before_up = watch.read(d).await?;
    link.up();
    d.log(format_args!(
        "link up; progress {at:.3} at the outage, {held:.3} when shown, {before_up:.3} at its end"
    ));
    // Nothing can be acknowledged across a dead link: progress that moved would count bytes
    // merely handed to the socket.
    ensure!(
        before_up <= held,
        "progress moved on while the link was down: {held:.3} -> {before_up:.3}"
    );
    watch
        .until(
            d,
            Duration::from_secs(240),
            "the queue drained",
            async |d, _| {
                let raw = d.attr("raw-count", "data-count").await?;
                Ok(raw.as_deref() == Some("0") && !shown(d, "waiting-for-network").await)
            },
        )
        .await?;
    ensure!(watch.read(d).await? >= 0.999, "drained below 100%");
    Ok(watch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_shows_an_outage_honestly_and_resumes() {
    let test = "the_app_shows_an_outage_honestly_and_resumes";
    let Some(mut tools) = Tools::find(test) else {
        return;
    };
    let lead = voxseal_e2e::e2e_lead();
    let Some(app) = voxseal_e2e::pinned_app(test, &[lead.join("keys/lead.key")]) else {
        return;
    };
    tools.app = app;
    let ports = free_ports();
    let Some(mut link) = exposed_link_or_skip("vxp", ports) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    pin_stack_key(&work.join("stack"), &lead);
    let _stack = start_stack(&link, work, ports, &[]);
    // 120 s at 96 kHz: 27.5 MB, about 23 s on the DSL uplink (raw audio in three parts).
    let payload = seal_takes(work, 1, 120, 96_000);
    let env = [
        ("VOXSEAL_DATA_DIR", work.join("data").display().to_string()),
        ("VOXSEAL_TOKEN_STORE", "file".to_owned()),
        ("VOXSEAL_TOKEN_PASSPHRASE", "uplink".to_owned()),
    ];
    let d = Desktop::launch_env(&tools, &env).await.expect("launch");
    let outcome = through_outage(&d, &mut link)
        .await
        .context("the app's queue through an outage");
    if outcome.is_err() {
        let _ = d.screenshot("uplink-failure").await;
        eprintln!("--- app log (end) ---\n{}", d.driver_log_tail(80));
    }
    let closed = d.shutdown().await;
    let watch = outcome.unwrap();
    closed.expect("shut down");
    let sent = link.stats().up_sent_bytes();
    eprintln!(
        "payload {payload} bytes; uplink {sent} bytes ({:.3}x); largest step back {:.3}",
        sent as f64 / payload as f64,
        watch.worst_back
    );
    let one_part = PART_BYTES as f64 / payload as f64;
    assert!(
        watch.worst_back <= one_part,
        "progress went back {:.3} (one part is {one_part:.3})",
        watch.worst_back
    );
    assert!(
        sent as f64 <= payload as f64 * 1.10,
        "{sent} bytes on the uplink for {payload} bytes of payload"
    );
}
