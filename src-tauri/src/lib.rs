//! The Voxseal desktop shell.

/// Runs the app.
pub fn run() {}
