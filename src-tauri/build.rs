//! Generates the Tauri context and the app's command permissions.
fn main() {
    tauri_build::build()
}
