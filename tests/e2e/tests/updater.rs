//! The updater of a release build, end to end: the pinned app (`scripts/test.sh` builds it as
//! `$CARGO_TARGET_DIR/e2e/voxseal-desktop-pinned` with the updater key of
//! `$CARGO_TARGET_DIR/e2e-updater`) asks an update server on 127.0.0.1 at start, as it asks the
//! project's release server. The server is this test; the updates are signed with the Tauri CLI
//! exactly as `scripts/dist.sh` signs them.
//!
//! - An update signed with the pinned key for the version announced is offered, downloaded and
//!   verified.
//! - The same update with one byte changed, one signed with another key, and one signed for an
//!   older version but announced as the new one are refused, and the app says so
//!   (`update_refused`).
//!
//! Installing is not exercised: it hands the package to dpkg as root.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::json;
use voxseal_e2e::steps::{LONG, SHORT};
use voxseal_e2e::{Desktop, Tools, target_dir};

/// The version the app is built as (`src-tauri/tauri.conf.json`) is 0.1.0; this is newer.
const NEW_VERSION: &str = "0.2.0";
const PACKAGE: &str = "voxseal_0.2.0_amd64.deb";
/// The Tauri CLI that `scripts/test.sh` made the updater key with.
const TAURI_CLI: &str = "@tauri-apps/cli@2.12.5";

/// Files served over HTTP/1.1 on 127.0.0.1, replaceable while it runs.
#[derive(Clone, Default)]
struct UpdateServer {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl UpdateServer {
    /// Serves from a thread until the test process ends; returns the base URL.
    fn start(&self) -> Result<String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let url = format!("http://{}", listener.local_addr()?);
        let files = self.files.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &files);
            }
        });
        Ok(url)
    }

    fn put(&self, path: &str, body: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_owned(), body);
    }
}

fn serve(stream: TcpStream, files: &Mutex<HashMap<String, Vec<u8>>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request.split(' ').nth(1).unwrap_or("/");
    let body = files.lock().unwrap().get(path).cloned();
    let mut stream = stream;
    match body {
        Some(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}

/// `tauri signer sign` of `file` for `version`: the `.sig` it writes.
fn sign(key: &Path, password: &str, version: &str, file: &Path) -> Result<String> {
    let out = Command::new("npx")
        .args(["--yes", TAURI_CLI, "signer", "sign", "-f"])
        .arg(key)
        .args(["-p", password, "--app-version", version])
        .arg(file)
        .output()
        .context("npx (Node.js) runs the Tauri CLI")?;
    ensure!(
        out.status.success(),
        "tauri signer sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = PathBuf::from(format!("{}.sig", file.display()));
    Ok(std::fs::read_to_string(sig)?)
}

/// A second updater key, not the one pinned into the app.
fn other_key(dir: &Path) -> Result<PathBuf> {
    let key = dir.join("other.key");
    let out = Command::new("npx")
        .args([
            "--yes", TAURI_CLI, "signer", "generate", "--ci", "-p", "other", "-w",
        ])
        .arg(&key)
        .output()?;
    ensure!(
        out.status.success(),
        "tauri signer generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(key)
}

/// The update manifest the updater reads: `version` announced, the package and its signature.
fn manifest(base: &str, signature: &str) -> Vec<u8> {
    json!({
        "version": NEW_VERSION,
        "notes": "Fixes for the queue screen.",
        "pub_date": "2026-12-01T00:00:00Z",
        "platforms": {
            "linux-x86_64": { "signature": signature, "url": format!("{base}/{PACKAGE}") }
        }
    })
    .to_string()
    .into_bytes()
}

/// Waits for the update on offer after the start-up check, and downloads it.
async fn offered_and_downloaded(d: &Desktop) -> Result<()> {
    d.wait_attr("update-notice", "data-phase", LONG, |p| p == "offered")
        .await
        .context("no update offered at start")?;
    let text = d.text("update-notice").await?;
    ensure!(text.contains(NEW_VERSION), "the offer: {text}");
    d.click("update-download").await
}

/// The download was refused for its signature, and the contractor is told.
async fn refused(d: &Desktop, what: &str) -> Result<()> {
    d.wait_attr("update-error", "data-kind", LONG, |k| k == "update_refused")
        .await
        .with_context(|| format!("{what}: not refused"))?;
    let text = d.text("update-error").await?;
    ensure!(text.contains("refused"), "{what}: {text}");
    ensure!(
        d.by_id("update-install").await.is_err(),
        "{what}: install offered"
    );
    d.log(format_args!("{what}: refused"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_installed_only_when_signed_with_the_pinned_key() {
    let Some(mut tools) = Tools::find("updates_are_installed_only_when_signed_with_the_pinned_key")
    else {
        return;
    };
    let key = target_dir().join("e2e-updater/updater.key");
    let test = "updates_are_installed_only_when_signed_with_the_pinned_key";
    let Some(app) = voxseal_e2e::pinned_app(test, std::slice::from_ref(&key)) else {
        return;
    };
    tools.app = app;
    let work = tempfile::tempdir().unwrap();
    let package = work.path().join(PACKAGE);
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&package, &bytes).unwrap();
    let good = sign(&key, "e2e-updater", NEW_VERSION, &package).unwrap();
    let older = sign(&key, "e2e-updater", "0.1.5", &package).unwrap();
    let foreign = sign(
        &other_key(work.path()).unwrap(),
        "other",
        NEW_VERSION,
        &package,
    )
    .unwrap();

    let server = UpdateServer::default();
    let base = server.start().unwrap();
    server.put("/latest.json", manifest(&base, &good));
    server.put(&format!("/{PACKAGE}"), bytes.clone());
    let env = [("VOXSEAL_UPDATE_URL", format!("{base}/latest.json"))];
    let mut d = Desktop::launch_env(&tools, &env).await.expect("launch");

    let flow = async {
        offered_and_downloaded(&d).await?;
        d.wait_attr("update-notice", "data-phase", LONG, |p| p == "verified")
            .await
            .context("the correctly signed update was not verified")?;
        d.wait_id("update-install", SHORT).await?;
        d.screenshot("14-update-verified").await?;
        d.log(format_args!("signed update verified"));

        let mut changed = bytes.clone();
        changed[123_456] ^= 0x01;
        server.put(&format!("/{PACKAGE}"), changed);
        d.restart().await?;
        offered_and_downloaded(&d).await?;
        refused(&d, "one byte changed").await?;
        d.screenshot("15-update-refused").await?;

        server.put(&format!("/{PACKAGE}"), bytes.clone());
        for (signature, what) in [
            (&foreign, "signed with another key"),
            (&older, "signed for 0.1.5, announced as 0.2.0"),
        ] {
            server.put("/latest.json", manifest(&base, signature));
            d.restart().await?;
            offered_and_downloaded(&d).await?;
            refused(&d, what).await?;
        }
        anyhow::Ok(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(240), flow).await;
    let outcome = outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the flow took over 240 s")));
    if outcome.is_err() {
        let _ = d.screenshot("updater-failure").await;
        eprintln!("--- app log (end) ---\n{}", d.driver_log_tail(80));
    }
    let closed = d.shutdown().await;
    outcome.expect("updates against the pinned key");
    closed.expect("shut down");
}
