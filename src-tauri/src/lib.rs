//! The Voxseal desktop shell: Tauri commands mapped one-to-one onto `voxseal_app::App`.
//!
//! Nothing here decides anything: each command parses its arguments, calls the app on a
//! blocking thread (recording, sealing and disk I/O must not block the UI thread) and returns
//! its result or `{kind, message}`. High-rate data (meter levels, upload progress) goes over
//! `tauri::ipc::Channel`; rare changes are events. The commands are those of voxseal-app's command
//! table (`crates/voxseal-app/src/commands.rs`), which `build.rs` declares, so the main window's
//! capability (`capabilities/main.json`) grants exactly these and nothing else;
//! `crates/voxseal-testkit/tests/ipc_contract.rs` fails unless the functions below take and return
//! what the table says.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use tauri::ipc::Channel;
use tauri::{AppHandle, Emitter, Manager, State};
use voxseal_app::instance::{self, Claim, InstanceGuard};
use voxseal_app::types::{
    ActivityEntry, AppState, JoinPreview, NoiseCheck, QueueState, TakeReview,
};
use voxseal_app::{App, AppError, AppEvent, AppOptions, ErrorKind};
use voxseal_cloud::uploader::UploadProgress;
use voxseal_core::capture::audio::{DeviceInfo, Level};

mod update;

/// What a command returns to the web view: a value, or a `{kind, message}` error.
type CommandResult<T> = Result<T, AppError>;

/// The app the window talks to: the joined project's, or the demo's (its own data directory)
/// while the contractor tries it. Switching stops one and starts the other.
struct Current {
    app: RwLock<App>,
    handle: AppHandle,
    data_dir: PathBuf,
}

impl Current {
    fn get(&self) -> App {
        self.app.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the running app with the demo's (`demo`) or the project's.
    fn switch(&self, demo: bool) -> CommandResult<AppState> {
        let dir = if demo {
            demo_dir(&self.data_dir)
        } else {
            self.data_dir.clone()
        };
        let next = start_app(&self.handle, dir, demo, None)?;
        let old = std::mem::replace(
            &mut *self.app.write().unwrap_or_else(|p| p.into_inner()),
            next.clone(),
        );
        old.stop();
        next.state()
    }
}

/// The demo's data directory: a sibling of the project's, so the demo never touches a project's
/// data, keys or queue.
fn demo_dir(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.file_name().unwrap_or_default().to_owned();
    name.push("-demo");
    data_dir.with_file_name(name)
}

fn start_app(
    handle: &AppHandle,
    dir: PathBuf,
    demo: bool,
    link: Option<String>,
) -> CommandResult<App> {
    let h = handle.clone();
    let events = Box::new(move |e: AppEvent| {
        let _ = match e {
            AppEvent::QueueChanged(q) => h.emit("queue-changed", q),
            AppEvent::DeviceLost(m) => h.emit("device-lost", serde_json::json!({ "message": m })),
            AppEvent::StateChanged(s) => h.emit("state-changed", s),
        };
    });
    let rt = tauri::async_runtime::handle().inner().clone();
    let mut opts = AppOptions::new(dir, events);
    opts.enroll_link = link;
    opts.demo = demo;
    App::start(opts, rt)
}

/// Runs `f` with the current app on a blocking thread.
async fn blocking<T: Send + 'static>(
    app: &State<'_, Current>,
    f: impl FnOnce(App) -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    let app = app.get();
    tauri::async_runtime::spawn_blocking(move || f(app))
        .await
        .map_err(|e| AppError::new(ErrorKind::Internal, e.to_string()))?
}

#[tauri::command]
async fn app_state(app: State<'_, Current>) -> CommandResult<AppState> {
    let state = blocking(&app, |a| a.state()).await;
    trace_first_state();
    state
}

/// When the process started (for `VOXSEAL_STARTUP_TRACE`).
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// With `VOXSEAL_STARTUP_TRACE=1`, prints how long after start the web view first asked for the
/// app state: the UI is loaded and interactive at that point (bench/app.sh measures cold start).
fn trace_first_state() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("VOXSEAL_STARTUP_TRACE").is_some() {
        ONCE.call_once(|| {
            if let Some(t) = STARTED.get() {
                eprintln!("voxseal: interactive after {} ms", t.elapsed().as_millis());
            }
        });
    }
}

#[tauri::command]
async fn enroll(app: State<'_, Current>, code: String, switch: bool) -> CommandResult<AppState> {
    blocking(&app, move |a| a.enroll(&code, switch)).await
}

#[tauri::command]
async fn preview_join(
    app: State<'_, Current>,
    code: String,
    switch: bool,
) -> CommandResult<JoinPreview> {
    blocking(&app, move |a| a.preview_join(&code, switch)).await
}

#[tauri::command]
async fn start_demo(app: State<'_, Current>) -> CommandResult<AppState> {
    if !voxseal_app::demo::AVAILABLE {
        return Err(AppError::new(
            ErrorKind::InvalidInput,
            "this build has no demo: it only joins its project",
        ));
    }
    switch(&app, true).await
}

#[tauri::command]
async fn leave_demo(app: State<'_, Current>) -> CommandResult<AppState> {
    switch(&app, false).await
}

/// Switches on a blocking thread (starting an app starts servers and reads the disk).
async fn switch(app: &State<'_, Current>, demo: bool) -> CommandResult<AppState> {
    let handle = app.handle.clone();
    tauri::async_runtime::spawn_blocking(move || handle.state::<Current>().switch(demo))
        .await
        .map_err(|e| AppError::new(ErrorKind::Internal, e.to_string()))?
}

#[tauri::command]
async fn give_consent(app: State<'_, Current>) -> CommandResult<AppState> {
    blocking(&app, |a| a.give_consent()).await
}

#[tauri::command]
async fn list_devices(app: State<'_, Current>) -> CommandResult<Vec<DeviceInfo>> {
    blocking(&app, |a| a.list_devices()).await
}

#[tauri::command]
async fn select_device(app: State<'_, Current>, name: Option<String>) -> CommandResult<AppState> {
    blocking(&app, move |a| a.select_device(name)).await
}

#[tauri::command]
async fn start_meter(app: State<'_, Current>, on_level: Channel<Level>) -> CommandResult<()> {
    blocking(&app, move |a| {
        a.start_meter(Box::new(move |l| drop(on_level.send(l))))
    })
    .await
}

#[tauri::command]
async fn stop_meter(app: State<'_, Current>) -> CommandResult<()> {
    blocking(&app, |a| {
        a.stop_meter();
        Ok(())
    })
    .await
}

#[tauri::command]
async fn check_noise(app: State<'_, Current>) -> CommandResult<NoiseCheck> {
    blocking(&app, |a| a.check_noise()).await
}

#[tauri::command]
async fn start_take(
    app: State<'_, Current>,
    prompt_id: String,
    on_level: Channel<Level>,
) -> CommandResult<String> {
    blocking(&app, move |a| {
        a.start_take(&prompt_id, Box::new(move |l| drop(on_level.send(l))))
    })
    .await
}

#[tauri::command]
async fn stop_take(app: State<'_, Current>) -> CommandResult<TakeReview> {
    blocking(&app, |a| a.stop_take()).await
}

#[tauri::command]
async fn play_take(app: State<'_, Current>) -> CommandResult<()> {
    blocking(&app, |a| a.play_take()).await
}

#[tauri::command]
async fn stop_playback(app: State<'_, Current>) -> CommandResult<()> {
    blocking(&app, |a| {
        a.stop_playback();
        Ok(())
    })
    .await
}

#[tauri::command]
async fn accept_take(app: State<'_, Current>, accept_failed: bool) -> CommandResult<AppState> {
    blocking(&app, move |a| a.accept_take(accept_failed)).await
}

#[tauri::command]
async fn discard_take(app: State<'_, Current>) -> CommandResult<AppState> {
    blocking(&app, |a| a.discard_take()).await
}

#[tauri::command]
async fn skip_prompt(
    app: State<'_, Current>,
    prompt_id: String,
    flag_reason: Option<String>,
) -> CommandResult<AppState> {
    blocking(&app, move |a| a.skip_prompt(&prompt_id, flag_reason)).await
}

#[tauri::command]
async fn go_to_prompt(app: State<'_, Current>, index: usize) -> CommandResult<AppState> {
    blocking(&app, move |a| a.go_to_prompt(index)).await
}

#[tauri::command]
async fn queue(app: State<'_, Current>) -> CommandResult<QueueState> {
    blocking(&app, |a| a.queue()).await
}

#[tauri::command]
async fn upload_now(
    app: State<'_, Current>,
    on_progress: Channel<UploadProgress>,
) -> CommandResult<QueueState> {
    let a = app.get();
    a.upload_now(Box::new(move |p| drop(on_progress.send(p))))
        .await
}

#[tauri::command]
async fn retry_item(app: State<'_, Current>, sample_id: String) -> CommandResult<QueueState> {
    let a = app.get();
    a.retry_item(&sample_id).await
}

#[tauri::command]
async fn activity(app: State<'_, Current>, limit: usize) -> CommandResult<Vec<ActivityEntry>> {
    blocking(&app, move |a| a.activity(limit)).await
}

#[tauri::command]
async fn save_preferences(
    app: State<'_, Current>,
    theme: String,
    language: String,
) -> CommandResult<AppState> {
    blocking(&app, move |a| a.save_preferences(&theme, &language)).await
}

#[tauri::command]
async fn check_update(
    handle: AppHandle,
    updates: State<'_, update::Updates>,
) -> CommandResult<Option<update::UpdateOffer>> {
    update::check(&handle, &updates).await
}

#[tauri::command]
async fn download_update(
    updates: State<'_, update::Updates>,
    on_progress: Channel<update::DownloadProgress>,
) -> CommandResult<update::UpdateOffer> {
    update::download(&updates, on_progress).await
}

#[tauri::command]
async fn install_update(
    handle: AppHandle,
    updates: State<'_, update::Updates>,
) -> CommandResult<()> {
    update::install(&handle, &updates).await
}

/// Claims `data_dir` for this process (`None`: another app has it and took `link`). The
/// running app shows each handed-over link on its enroll screen and comes to the front.
fn claim_instance(
    handle: &AppHandle,
    data_dir: &Path,
    link: Option<&str>,
) -> Result<Option<InstanceGuard>, Box<dyn std::error::Error>> {
    let h = handle.clone();
    let on_message = move |link: Option<String>| take_link(&h, link);
    Ok(match instance::claim(data_dir, link, on_message)? {
        Claim::First(guard) => Some(guard),
        Claim::HandedOver => None,
    })
}

/// Shows a link handed to the running app (by a second launch, or on macOS by the system) on
/// its enroll screen, and brings the window to the front.
fn take_link(handle: &AppHandle, link: Option<String>) {
    if let (Some(link), Some(current)) = (link, handle.try_state::<Current>()) {
        let _ = current.get().open_link(&link);
    }
    if let Some(window) = handle.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Handles the events of the running app: on macOS a `voxseal://` link that opens the app comes
/// as an Apple Event (`RunEvent::Opened`), not as an argument as on Linux and Windows.
fn on_event(handle: &AppHandle, event: tauri::RunEvent) {
    #[cfg(target_os = "macos")]
    if let tauri::RunEvent::Opened { urls } = event {
        for url in urls.into_iter().filter(|u| u.scheme() == "voxseal") {
            take_link(handle, Some(url.to_string()));
        }
    }
    #[cfg(not(target_os = "macos"))]
    let _ = (handle, event);
}

/// Runs the desktop app. The data directory is `$VOXSEAL_DATA_DIR` (tests) or the platform's
/// app data directory; with `demo` (`--demo`) it opens the demo instead (its own directory).
pub fn run(enroll_link: Option<String>, demo: bool) {
    STARTED.get_or_init(std::time::Instant::now);
    let builder = tauri::Builder::default().manage(update::Updates::default());
    #[cfg(feature = "updater")]
    let builder = builder.plugin(update::plugin());
    builder
        .setup(move |tauri_app| {
            let data_dir = match std::env::var_os("VOXSEAL_DATA_DIR") {
                Some(d) => PathBuf::from(d),
                // Local, not roaming, on Windows (%LOCALAPPDATA%: a roaming profile would copy
                // the queue to a file server); the same directory as app_data_dir elsewhere.
                None => tauri_app.path().app_local_data_dir()?,
            };
            let handle = tauri_app.handle().clone();
            // One app per data directory: a second launch hands its link over and ends here.
            let guard = match claim_instance(&handle, &data_dir, enroll_link.as_deref())? {
                Some(guard) => guard,
                None => std::process::exit(0),
            };
            tauri_app.manage(guard);
            let demo = demo && voxseal_app::demo::AVAILABLE;
            let dir = if demo {
                demo_dir(&data_dir)
            } else {
                data_dir.clone()
            };
            let app = start_app(&handle, dir, demo, enroll_link.clone())
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?;
            tauri_app.manage(Current {
                app: RwLock::new(app),
                handle,
                data_dir,
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            app_state,
            enroll,
            preview_join,
            start_demo,
            leave_demo,
            give_consent,
            list_devices,
            select_device,
            start_meter,
            stop_meter,
            check_noise,
            start_take,
            stop_take,
            play_take,
            stop_playback,
            accept_take,
            discard_take,
            skip_prompt,
            go_to_prompt,
            queue,
            upload_now,
            retry_item,
            activity,
            save_preferences,
            check_update,
            download_update,
            install_update,
        ])
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("voxseal: the app could not start: {e}");
            std::process::exit(1);
        })
        .run(on_event);
}
