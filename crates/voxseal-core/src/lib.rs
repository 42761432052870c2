//! Voxseal's laptop-side pipeline, with no GUI and no network.
//!
//! A take travels: an [`audio::AudioSource`] -> the [`recorder`] thread (levels, quality,
//! encrypted [`spool`]) -> review -> [`seal`] (WAV + [`features`] sealed with age into an
//! [`outbox`] item with a [`manifest`]) -> [`wipe`] of the spool. Every step is written to the
//! hash-chained [`audit`] log. Plaintext audio is never written to disk outside the spool, whose
//! key exists only in memory.
//!
//! ```
//! use voxseal_core::ids::ContractorId;
//! let id: ContractorId = "alice-01".parse().unwrap();
//! assert_eq!(id.as_str(), "alice-01");
//! assert!("../x".parse::<ContractorId>().is_err());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod age_writer;
pub mod audio;
pub mod audit;
pub mod binding;
pub mod config;
pub mod enroll_link;
pub mod fault;
pub mod features;
pub mod fsutil;
pub mod hardening;
pub mod ids;
pub mod key_layout;
pub mod keys;
pub mod manifest;
pub mod open;
pub mod outbox;
pub mod pcm;
pub mod progress;
pub mod project_install;
pub mod quality;
pub mod recorder;
pub mod release;
pub mod resample;
pub mod seal;
pub mod signing;
pub mod spool;
pub mod time;
pub mod wav;
pub mod wipe;
pub mod workspace;

/// The version of this crate, recorded in manifests and audit events.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
