//! Voxseal desktop entry point.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // Before anything holds a key or audio: no core file can carry them.
    voxseal_core::hardening::harden_process();
    // Answer --version without a display (package checks, support).
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-V")
    {
        println!("voxseal-desktop {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    // Opened from a voxseal://enroll link (the desktop entry passes it as an argument).
    let link = std::env::args()
        .skip(1)
        .find(|a| a.starts_with("voxseal://"));
    // `--demo` opens the demo (the embedded local stack, its own data directory) directly.
    let demo = std::env::args().skip(1).any(|a| a == "--demo");
    voxseal_desktop::run(link, demo);
}
