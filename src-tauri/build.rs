//! Generates the Tauri context and the app's command permissions.
//!
//! Listing the commands here makes Tauri generate `allow-<command>` permissions and refuse any
//! command the window's capability does not grant.

const COMMANDS: &[&str] = &[
    "app_state",
    "enroll",
    "give_consent",
    "list_devices",
    "select_device",
    "start_meter",
    "stop_meter",
    "check_noise",
    "start_take",
    "stop_take",
    "play_take",
    "stop_playback",
    "accept_take",
    "discard_take",
    "skip_prompt",
    "go_to_prompt",
    "queue",
    "upload_now",
    "retry_item",
    "activity",
    "save_preferences",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build script failed");
}
