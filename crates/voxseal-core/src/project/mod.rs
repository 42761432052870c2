//! The project: its signed config, the lead's signatures, identifiers, manifests, enrollment
//! links and the installed project.

pub mod config;
pub mod enroll_link;
pub mod ids;
pub mod install;
pub mod manifest;
pub mod signing;
