//! Voxseal desktop entry point.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // Answer --version without a display (package checks, support).
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-V")
    {
        println!("voxseal-desktop {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    voxseal_desktop::run();
}
