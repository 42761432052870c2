// The IPC commands, written once: each command's name, its arguments (the names and types the
// shell's `#[tauri::command]` function takes, after its `State`/`AppHandle` parameters) and what
// it returns (inside `CommandResult<..>`). Types are named as src-tauri names them, without
// their path.
//
// Everything else follows from this table or is checked against it:
// - src-tauri/build.rs includes this file and declares exactly these commands to Tauri (the
//   `allow-<command>` permissions);
// - ui/src/lib/commands.ts, the front end's typed command map, is generated from it (the test in
//   src/bindings.rs fails while the checked-in file differs);
// - crates/voxseal-testkit/tests/ipc_contract.rs fails unless src-tauri's command functions take
//   exactly these arguments (names and types) and return these types, `generate_handler!` and
//   the capability name exactly these commands, and backend.ts calls each of them.
//
// This file is `include!`d by the build script and the contract test, so it holds items only (no
// inner attributes, no `use`).

/// One IPC command, as the table declares it.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// The command's name (snake_case, the Rust function's name).
    pub name: &'static str,
    /// Its arguments: the Rust parameter name and the Rust type, as written in the table.
    pub args: &'static [(&'static str, &'static str)],
    /// The Rust type it returns (inside `CommandResult<..>`), as written in the table.
    pub returns: &'static str,
    /// What the table says about it.
    pub doc: &'static str,
}

/// Hands the command table to `$m!`, which gets one
/// `$(#[doc = ".."])* name(arg: Type, ..) -> Result;` line per command.
macro_rules! with_commands {
    ($m:ident) => {
        $m! {
            /// The app's state.
            app_state() -> AppState;
            /// A `voxseal://enroll?...` link (in the demo, the demo code); `switch` replaces the installed project.
            enroll(code: String, switch: bool) -> AppState;
            /// The link's project, verified against the pinned key, before the code is used.
            preview_join(code: String, switch: bool) -> JoinPreview;
            /// Switches to the demo (its own data directory).
            start_demo() -> AppState;
            /// Back to the project's data directory.
            leave_demo() -> AppState;
            /// Records the consent.
            give_consent() -> AppState;
            /// The input devices.
            list_devices() -> Vec<DeviceInfo>;
            /// `null` = the system default; remembered in settings.
            select_device(name: Option<String>) -> AppState;
            /// Live levels (~25 Hz) over a channel; no recording.
            start_meter(on_level: Channel<Level>) -> ();
            /// Stops the meter.
            stop_meter() -> ();
            /// Records 3 s, nothing stored.
            check_noise() -> NoiseCheck;
            /// Returns the take id; `busy` while recording or with a take under review, `no_consent` before consent.
            start_take(prompt_id: String, on_level: Channel<Level>) -> String;
            /// Keeps recording 500 ms after the call.
            stop_take() -> TakeReview;
            /// Resolves when playback ends or is stopped.
            play_take() -> ();
            /// Stops playing.
            stop_playback() -> ();
            /// Seals the take under review; `accept_failed` confirms a failing one.
            accept_take(accept_failed: bool) -> AppState;
            /// Discards the take under review.
            discard_take() -> AppState;
            /// A reason marks the prompt as flagged; `busy` with a take under review.
            skip_prompt(prompt_id: String, flag_reason: Option<String>) -> AppState;
            /// `busy` with a take under review.
            go_to_prompt(index: usize) -> AppState;
            /// The upload queue.
            queue() -> QueueState;
            /// Uploads now; offline is a state in the result, not an error.
            upload_now(on_progress: Channel<UploadProgress>) -> QueueState;
            /// Marks a failed item for retry and starts an upload.
            retry_item(sample_id: String) -> QueueState;
            /// The audit trail, newest first.
            activity(limit: usize) -> Vec<ActivityEntry>;
            /// Saves the theme and the language.
            save_preferences(theme: String, language: String) -> AppState;
            /// `null` when up to date, and always in builds without the updater.
            check_update() -> Option<UpdateOffer>;
            /// Downloads and verifies the offered update; `update_refused` when its signature does not verify.
            download_update(on_progress: Channel<DownloadProgress>) -> UpdateOffer;
            /// Installs the verified update and restarts the app.
            install_update() -> ();
        }
    };
}

/// Turns the table into `Command` values.
macro_rules! command_specs {
    ($( $(#[doc = $doc:literal])* $name:ident( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        &[$(Command {
            name: stringify!($name),
            args: &[$((stringify!($arg), stringify!($ty))),*],
            returns: stringify!($ret),
            doc: concat!($($doc),*),
        }),*]
    };
}

/// Every IPC command, in the order of docs/app-ipc.md.
pub const COMMANDS: &[Command] = with_commands!(command_specs);
