//! End-to-end test harness for the Voxseal desktop app: the real binary
//! (`$CARGO_TARGET_DIR/debug/voxseal-desktop`, with the built `ui/dist` inside) in its real web
//! view, under a private Xvfb display, driven over WebDriver (fantoccini -> tauri-driver ->
//! WebKitWebDriver), recording real speech through cpal from the private PulseAudio server of
//! `scripts/pulse.sh` (espeak-ng played into its null sink, whose monitor is the default input).
//!
//! [`Desktop::launch`] starts everything; [`Desktop::shutdown`] ends the WebDriver session, stops
//! tauri-driver with SIGTERM (it then stops WebKitWebDriver, which a SIGKILL would leave
//! running) and stops Xvfb. Dropping a [`Desktop`] without `shutdown` still stops the processes.
//!
//! Nothing touches the real user's folders: the app's data directory (`VOXSEAL_DATA_DIR`) and the
//! XDG directories of the web view are in a temporary directory.
//!
//! What is needed: the app binary (`scripts/test.sh` builds it: `npm --prefix ui ci && npm
//! --prefix ui run build && cargo build -p voxseal-desktop`), `tauri-driver` 2.x in
//! `~/.cargo/bin` or on `PATH`, and `WebKitWebDriver`, `Xvfb`, `import`, `espeak-ng`, `paplay`,
//! `pactl` (`scripts/setup.sh --test` installs them). When something is missing the test prints
//! "skipped" and passes, unless `VOXSEAL_REQUIRE_E2E=1` (set by `scripts/test.sh`): then it fails
//! and says what is missing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub mod steps;

/// The null sink of `scripts/pulse.sh`; its monitor is the default input.
pub const SINK: &str = "voxseal_null";

/// The app window's size (`src-tauri/tauri.conf.json`); the Xvfb screen is made the same size so
/// that a screenshot of the root window is a screenshot of the app.
const SCREEN: &str = "1024x760x24";

const HINT: &str = "run scripts/test.sh (it installs the tools with scripts/setup.sh --test and \
                    builds the app: npm --prefix ui ci && npm --prefix ui run build && \
                    cargo build -p voxseal-desktop)";

/// True when `VOXSEAL_REQUIRE_E2E=1`: anything missing is then a failure instead of a skip.
pub fn required() -> bool {
    std::env::var("VOXSEAL_REQUIRE_E2E").as_deref() == Ok("1")
}

pub use voxseal_testkit::repo_root;

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else the one this test binary was built in
/// (`<target>/debug/deps/<test>`).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        return if d.is_absolute() {
            d
        } else {
            repo_root().join(d)
        };
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| repo_root().join("target"))
}

/// The lead's keys that `scripts/test.sh` pinned into the release-style app build.
pub fn e2e_lead() -> PathBuf {
    target_dir().join("e2e-lead")
}

/// The release-style app `scripts/test.sh` builds (a lead key pinned, no demo), once it and the
/// key files `needs` exist. Otherwise says why and returns `None` (the test is skipped), or,
/// when [`required`], fails.
pub fn pinned_app(test: &str, needs: &[PathBuf]) -> Option<PathBuf> {
    let app = target_dir().join("e2e/voxseal-desktop-pinned");
    let missing: Vec<String> = std::iter::once(&app)
        .chain(needs)
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(app);
    }
    assert!(
        !required(),
        "{test}: {} missing: scripts/test.sh builds them",
        missing.join(", ")
    );
    eprintln!(
        "{test}: skipped: no pinned app build ({} missing)",
        missing.join(", ")
    );
    None
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/e2e-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("e2e-screenshots")
}

/// Everything the test runs, found on this machine.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The desktop app.
    pub app: PathBuf,
    /// tauri-driver 2.x.
    pub tauri_driver: PathBuf,
    /// WebKitGTK's WebDriver (Debian: webkit2gtk-driver).
    pub webkit_driver: PathBuf,
    /// The X server.
    pub xvfb: PathBuf,
    /// ImageMagick's `import` (screenshots of the display).
    pub import: PathBuf,
    /// Speech synthesis.
    pub espeak: PathBuf,
    /// Plays into the null sink.
    pub paplay: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

impl Tools {
    /// Finds the tools. When something is missing: panics with what and how to fix it if
    /// [`required`], else prints "`test`: skipped: ..." and returns `None`.
    pub fn find(test: &str) -> Option<Tools> {
        let mut missing = Vec::new();
        let mut find = |name: &str, extra: &[PathBuf]| -> PathBuf {
            extra
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .or_else(|| on_path(name))
                .unwrap_or_else(|| {
                    missing.push(name.to_owned());
                    PathBuf::from(name)
                })
        };
        let home_cargo = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cargo/bin/tauri-driver"))
            .into_iter()
            .collect::<Vec<_>>();
        let tools = Tools {
            app: PathBuf::new(),
            tauri_driver: find("tauri-driver", &home_cargo),
            webkit_driver: find("WebKitWebDriver", &[]),
            xvfb: find("Xvfb", &[]),
            import: find("import", &[]),
            espeak: find("espeak-ng", &[]),
            paplay: find("paplay", &[]),
        };
        find("pactl", &[]);
        if std::env::var_os("PULSE_SERVER").is_none_or(|s| s.is_empty()) {
            // scripts/pulse.sh starts the server
            find("pulseaudio", &[]);
        }
        let app = target_dir().join("debug/voxseal-desktop");
        if !app.is_file() {
            missing.push(format!("the app binary {}", app.display()));
        }
        if !repo_root().join("ui/dist/index.html").is_file() {
            missing.push("the built UI (ui/dist/index.html)".into());
        }
        if missing.is_empty() {
            return Some(Tools { app, ..tools });
        }
        let what = missing.join(", ");
        assert!(
            !required(),
            "{test}: VOXSEAL_REQUIRE_E2E=1 but missing: {what}; {HINT}"
        );
        // Straight to stderr: the test harness captures print! output of passing tests.
        let _ = writeln!(std::io::stderr(), "{test}: skipped: missing {what}; {HINT}");
        None
    }
}

/// A child process stopped with SIGTERM (then SIGKILL after a grace period) when dropped.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM through kill(1): std only sends SIGKILL, and this crate has no unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} ignored SIGTERM for {grace:?}; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The env of the private PulseAudio server: the current env when `PULSE_SERVER` is set,
/// else what `scripts/pulse.sh` prints (it starts the server when it is not running).
fn pulse_env() -> Result<Vec<(String, String)>> {
    const KEYS: [&str; 8] = [
        "PULSE_SERVER",
        "PULSE_RUNTIME_PATH",
        "PULSE_STATE_PATH",
        "PULSE_COOKIE",
        "PULSE_CLIENTCONFIG",
        "PULSE_SINK",
        "PULSE_SOURCE",
        "ALSA_CONFIG_PATH",
    ];
    if std::env::var_os("PULSE_SERVER").is_some_and(|s| !s.is_empty()) {
        return Ok(KEYS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect());
    }
    let script = repo_root().join("scripts/pulse.sh");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(out.status.success(), "{} failed", script.display());
    let text = String::from_utf8(out.stdout)?;
    let mut env = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line
            .strip_prefix("export ")
            .and_then(|kv| kv.split_once('='))
        else {
            continue;
        };
        // printf %q output: the paths it prints need no unquoting beyond backslashes.
        env.push((k.to_owned(), v.replace('\\', "")));
    }
    ensure!(
        env.iter().any(|(k, _)| k == "PULSE_SERVER"),
        "scripts/pulse.sh printed no PULSE_SERVER"
    );
    Ok(env)
}

/// A WebDriver session through tauri-driver on `port`: it launches `app`.
async fn new_session(app: &Path, port: u16) -> Result<Client> {
    let caps = json!({
        "browserName": "wry",
        "tauri:options": { "application": app },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("opening a WebDriver session through tauri-driver")
}

/// Two free TCP ports `p` and `p + 1` on 127.0.0.1 (tauri-driver's and WebKitWebDriver's).
fn free_port_pair() -> Result<u16> {
    for _ in 0..50 {
        let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let p = a.local_addr()?.port();
        if p < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok() {
            return Ok(p);
        }
    }
    bail!("no two consecutive free ports on 127.0.0.1")
}

fn wait_for_port(port: u16, timeout: Duration, proc: &mut Proc) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(st)) = proc.child.try_wait() {
            bail!("{} exited ({st}) before port {port} opened", proc.name);
        }
        ensure!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {timeout:?} ({})",
            proc.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts Xvfb on a free display (it picks one and tells it through `-displayfd`).
fn start_xvfb(xvfb: &Path, log: &Path) -> Result<(Proc, String)> {
    let mut child = Command::new(xvfb)
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            SCREEN,
            "-nolisten",
            "tcp",
        ])
        .args(["-noreset"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log)?)
        .spawn()
        .context("starting Xvfb")?;
    let stdout = child.stdout.take().expect("piped");
    let mut proc = Proc {
        name: "Xvfb",
        child,
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let n: u32 = line.trim().parse().map_err(|_| {
        proc.stop(Duration::from_secs(2));
        anyhow!(
            "Xvfb did not report its display: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })?;
    Ok((proc, format!(":{n}")))
}

/// The app under test, in its web view, with the processes around it.
pub struct Desktop {
    /// The WebDriver session (the app's main window).
    pub client: Client,
    /// The X display, e.g. `:3`.
    pub display: String,
    data: PathBuf,
    tools: Tools,
    pulse: Vec<(String, String)>,
    /// The app's environment (display, data directory, sound), for a second launch.
    app_env: Vec<(String, String)>,
    /// tauri-driver's port.
    port: u16,
    started: Instant,
    shots: PathBuf,
    dir: tempfile::TempDir,
    // Dropped in this order: tauri-driver (and WebKitWebDriver and the app with it), then Xvfb.
    driver: Option<Proc>,
    xvfb: Option<Proc>,
    _sink: File,
}

impl Desktop {
    /// Starts Xvfb, the PulseAudio server (if needed), tauri-driver, and a WebDriver session that
    /// launches the app with a fresh data directory (no project yet: the enroll screen, with
    /// "Try a demo").
    pub async fn launch(tools: &Tools) -> Result<Desktop> {
        Self::launch_env(tools, &[]).await
    }

    /// [`launch`](Self::launch) with extra environment variables for the app; a
    /// `VOXSEAL_DATA_DIR` among them replaces the fresh data directory (one a test prepared).
    pub async fn launch_env(tools: &Tools, env: &[(&str, String)]) -> Result<Desktop> {
        let started = Instant::now();
        let dir = tempfile::Builder::new().prefix("voxseal-e2e-").tempdir()?;
        let pulse = pulse_env()?;
        // Exclusive use of the null sink (the capture tests of voxseal-core take the same lock),
        // so no other test hears this one's speech or plays into its recordings.
        let runtime = pulse
            .iter()
            .find(|(k, _)| k == "PULSE_RUNTIME_PATH")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(std::env::temp_dir);
        let sink = File::create(runtime.join("voxseal-capture-test.lock"))?;
        sink.lock()?;

        let (xvfb, display) = start_xvfb(&tools.xvfb, &dir.path().join("xvfb.log"))?;
        let data = match env.iter().find(|(k, _)| *k == "VOXSEAL_DATA_DIR") {
            Some((_, d)) => PathBuf::from(d),
            None => dir.path().join("data"),
        };
        let xdg = dir.path().join("xdg");
        for sub in ["data", "cache", "config", "runtime"] {
            std::fs::create_dir_all(xdg.join(sub))?;
        }
        let port = free_port_pair()?;
        let log = File::create(dir.path().join("tauri-driver.log"))?;
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut app_env: Vec<(String, String)> = vec![
            ("DISPLAY".into(), display.clone()),
            ("GDK_BACKEND".into(), "x11".into()),
            ("NO_AT_BRIDGE".into(), "1".into()),
            ("VOXSEAL_DATA_DIR".into(), path(data.clone())),
            ("XDG_DATA_HOME".into(), path(xdg.join("data"))),
            ("XDG_CACHE_HOME".into(), path(xdg.join("cache"))),
            ("XDG_CONFIG_HOME".into(), path(xdg.join("config"))),
            ("XDG_RUNTIME_DIR".into(), path(xdg.join("runtime"))),
        ];
        app_env.extend(pulse.iter().cloned());
        app_env.extend(
            (env.iter())
                .filter(|(k, _)| *k != "VOXSEAL_DATA_DIR")
                .map(|(k, v)| ((*k).to_owned(), v.clone())),
        );
        let child = Command::new(&tools.tauri_driver)
            .args(["--port", &port.to_string()])
            .args(["--native-port", &(port + 1).to_string()])
            .arg("--native-driver")
            .arg(&tools.webkit_driver)
            // tauri-driver passes its environment on to WebKitWebDriver and so to the app.
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("VOXSEAL_SOURCE")
            .envs(app_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting tauri-driver")?;
        let mut driver = Proc {
            name: "tauri-driver",
            child,
        };
        wait_for_port(port, Duration::from_secs(20), &mut driver)?;
        wait_for_port(port + 1, Duration::from_secs(20), &mut driver)?;

        let client = new_session(&tools.app, port).await?;
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots)?;
        let d = Desktop {
            client,
            display,
            data,
            tools: tools.clone(),
            pulse,
            app_env,
            port,
            started,
            shots,
            dir,
            driver: Some(driver),
            xvfb: Some(xvfb),
            _sink: sink,
        };
        d.log(format_args!("app launched on {}", d.display));
        Ok(d)
    }

    /// Quits the app (ending the WebDriver session) and starts it again on the same data
    /// directory, as a contractor does after a reboot.
    pub async fn restart(&mut self) -> Result<()> {
        self.client.clone().close().await?;
        // The app holds `app.lock` while it runs: wait until the old one has gone.
        let lock = File::options()
            .write(true)
            .open(self.data_dir().join("app.lock"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while lock.try_lock().is_err() {
            ensure!(
                Instant::now() < deadline,
                "the app still runs 15 s after quitting"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lock.unlock()?;
        self.client = new_session(&self.tools.app, self.port).await?;
        self.log(format_args!("app restarted"));
        Ok(())
    }

    /// Launches the app binary again with `args` in the running app's environment, as a browser
    /// does for a `voxseal://` link, and waits up to `wait` for that second process to end.
    pub async fn launch_again(&self, args: &[&str], wait: Duration) -> Result<ExitStatus> {
        let mut child = Command::new(&self.tools.app)
            .args(args)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("VOXSEAL_SOURCE")
            .envs(self.app_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("launching the app a second time")?;
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the second launch still ran after {wait:?}: it kept its own window");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A progress line with the time since launch (stderr, shown with `--nocapture` or on failure).
    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        eprintln!("[e2e {:6.1}s] {msg}", self.started.elapsed().as_secs_f64());
    }

    /// The app's data directory (`VOXSEAL_DATA_DIR`).
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// The end of tauri-driver's log (WebKitWebDriver's and the app's output are in it too).
    pub fn driver_log_tail(&self, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("tauri-driver.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Saves a screenshot of the whole display as `<name>.png` in [`screenshot_dir`], once the
    /// web view has painted what the DOM holds now (two animation frames, then a moment for the
    /// frame to reach the X server).
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        self.js_async(
            "const done = arguments[arguments.length - 1]; \
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let path = self.shots.join(format!("{name}.png"));
        let out = Command::new(&self.tools.import)
            .args(["-display", &self.display, "-window", "root"])
            .arg(&path)
            .output()
            .context("running import")?;
        ensure!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.log(format_args!("screenshot {}", path.display()));
        Ok(path)
    }

    /// Plays `text` as speech into the null sink (`espeak-ng --stdout | paplay`) on a blocking
    /// thread, in the voice of its script (Arabic, Devanagari, else English); the handle ends
    /// when the player has played it all.
    pub fn speak(&self, text: &str) -> tokio::task::JoinHandle<Result<Duration>> {
        let espeak = self.tools.espeak.clone();
        let paplay = self.tools.paplay.clone();
        let env = self.pulse.clone();
        let text = text.to_owned();
        let voice = voice_for(&text);
        tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            let mut speak = Command::new(espeak)
                .args(["-v", voice, "--stdout", &text])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("running espeak-ng")?;
            // A small latency makes the null sink render in small blocks instead of 2 s ones,
            // so the speech reaches the monitor (the app's input) while it plays.
            let play = Command::new(paplay)
                .arg(format!("--device={SINK}"))
                .arg("--latency-msec=40")
                .envs(env)
                .stdin(speak.stdout.take().expect("piped"))
                .stderr(Stdio::piped())
                .output()
                .context("running paplay")?;
            ensure!(speak.wait()?.success(), "espeak-ng failed");
            ensure!(
                play.status.success(),
                "paplay failed: {}",
                String::from_utf8_lossy(&play.stderr)
            );
            Ok(t0.elapsed())
        })
    }

    /// The element with `data-testid`, now.
    pub async fn by_id(&self, id: &str) -> Result<Element> {
        self.client
            .find(Locator::Css(&testid(id)))
            .await
            .with_context(|| format!("no element [data-testid={id}]"))
    }

    /// Waits for the element with `data-testid` to exist.
    pub async fn wait_id(&self, id: &str, timeout: Duration) -> Result<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(&testid(id))).await {
                return Ok(e);
            }
            ensure!(
                Instant::now() < deadline,
                "[data-testid={id}] did not appear within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element with `data-testid`, waiting for it to exist, be enabled and take the
    /// click (a WebDriver click fails on an element not laid out yet). Fails when the click
    /// reached another element: the page moved between WebDriver locating the element and the
    /// click, as it would under a contractor's pointer.
    pub async fn click(&self, id: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = self.wait_id(id, Duration::from_secs(10)).await?;
            let why = if e.is_enabled().await.unwrap_or(false) {
                self.js(WATCH_CLICKS, vec![]).await?;
                match e.click().await {
                    Ok(()) => return self.check_click_reached(id).await,
                    Err(err) => format!("the click failed: {err}"),
                }
            } else {
                "it stayed disabled".to_owned()
            };
            ensure!(Instant::now() < deadline, "could not click {id}: {why}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The click just made reached `id` (when the page still holds the click log: a click that
    /// reloads or closes the page has nothing to check).
    async fn check_click_reached(&self, id: &str) -> Result<()> {
        let Ok(last) = self.js(LAST_CLICK, vec![json!(id)]).await else {
            return Ok(());
        };
        ensure!(
            last.is_null() || last["reached"] == json!(true),
            "the click on {id} reached {} instead (at {}, {}; the header was {} px high then and \
             is {} px now): the page moved under the pointer",
            last["on"],
            last["x"],
            last["y"],
            last["header"],
            last["headerNow"]
        );
        Ok(())
    }

    /// Types `text` into the element with `data-testid` `id`.
    pub async fn type_text(&self, id: &str, text: &str) -> Result<()> {
        self.by_id(id)
            .await?
            .send_keys(text)
            .await
            .with_context(|| format!("typing into {id}"))
    }

    /// An attribute of the element with `data-testid` (None when either is missing); `value` is
    /// an input's current value (what the contractor sees), not its initial attribute.
    pub async fn attr(&self, id: &str, attr: &str) -> Result<Option<String>> {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); \
                 if (!e) return null; \
                 return arguments[1] === 'value' && 'value' in e ? e.value : e.getAttribute(arguments[1]);",
                vec![json!(testid(id)), json!(attr)],
            )
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// The text content of the element with `data-testid` (trimmed; DOM text, so it does not
    /// depend on layout having happened).
    pub async fn text(&self, id: &str) -> Result<String> {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); \
                 return e ? e.textContent : null;",
                vec![json!(testid(id))],
            )
            .await?;
        let text = v
            .as_str()
            .with_context(|| format!("no element [data-testid={id}]"))?;
        Ok(text.trim().to_owned())
    }

    /// Waits until `attr` of the element with `data-testid` satisfies `ok`; returns its value.
    pub async fn wait_attr(
        &self,
        id: &str,
        attr: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            let v = self.attr(id, attr).await?;
            if let Some(v) = &v
                && ok(v)
            {
                return Ok(v.clone());
            }
            last = v.or(last);
            ensure!(
                Instant::now() < deadline,
                "[data-testid={id}] {attr} was {last:?} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a synchronous script in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// Runs an asynchronous script; it calls `arguments[arguments.length - 1]` with its result.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        Ok(self.client.execute_async(script, args).await?)
    }

    /// Ends the session (the app quits), stops tauri-driver with SIGTERM and stops Xvfb.
    pub async fn shutdown(mut self) -> Result<()> {
        let closed = self.client.clone().close().await;
        if let Some(mut d) = self.driver.take() {
            tokio::task::spawn_blocking(move || d.stop(Duration::from_secs(10))).await?;
        }
        if let Some(mut x) = self.xvfb.take() {
            tokio::task::spawn_blocking(move || x.stop(Duration::from_secs(5))).await?;
        }
        self.log(format_args!("shut down"));
        closed.context("closing the WebDriver session")
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        // Without shutdown (a failed step): tauri-driver first, then the display.
        drop(self.driver.take());
        drop(self.xvfb.take());
    }
}

/// Logs, once per page, which element each click reaches, where, and the header's height then.
const WATCH_CLICKS: &str = "window.__clicks = []; if (!window.__clicksOn) { \
    window.__clicksOn = true; document.addEventListener('click', e => window.__clicks.push({ \
    target: e.target, x: e.clientX, y: e.clientY, \
    header: document.querySelector('header')?.getBoundingClientRect().height}), true); }";

/// Whether the last logged click reached the element with `data-testid` `arguments[0]` (null
/// when the page was replaced since), and where it went.
const LAST_CLICK: &str = "const c = window.__clicks?.at(-1); if (!c) return null; \
    return {reached: !!c.target.closest(`[data-testid=\"${arguments[0]}\"]`), \
    on: c.target.closest('[data-testid]')?.dataset.testid ?? c.target.tagName, x: c.x, y: c.y, \
    header: c.header, headerNow: document.querySelector('header')?.getBoundingClientRect().height};";

/// The espeak-ng voice for `text`'s script: Arabic, Hindi (Devanagari), else English.
pub fn voice_for(text: &str) -> &'static str {
    let has = |range: std::ops::RangeInclusive<char>| text.chars().any(|c| range.contains(&c));
    if has('\u{0600}'..='\u{06FF}') {
        "ar"
    } else if has('\u{0900}'..='\u{097F}') {
        "hi"
    } else {
        "en"
    }
}

/// The CSS selector of a `data-testid`.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}
