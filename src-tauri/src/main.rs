//! Voxseal desktop entry point.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    voxseal_desktop::run();
}
