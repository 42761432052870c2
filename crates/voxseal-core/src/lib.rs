//! Voxseal's laptop-side pipeline, with no GUI and no network.
//!
//! The modules follow a take through the pipeline:
//!
//! - [`capture`]: an [`capture::audio::AudioSource`] -> the [`capture::recorder`] thread
//!   (levels, quality, encrypted [`capture::spool`]);
//! - [`dsp`]: streamed PCM, [`dsp::resample`], [`dsp::features`], [`dsp::quality`];
//! - [`sealing`]: review -> [`sealing::seal`] (WAV + features sealed with age, bound to the
//!   manifest) and [`sealing::open`];
//! - [`store`]: the [`store::outbox`] item, its upload [`store::progress`], the hash-chained
//!   [`store::audit`] log, the [`store::wipe`] of the spool, the [`store::workspace`] holding it all;
//! - [`project`]: the signed [`project::config`], [`project::ids`], [`project::manifest`].
//!
//! Plaintext audio is never written to disk outside the spool, whose key exists only in memory.
//!
//! ```
//! use voxseal_core::project::ids::ContractorId;
//! let id: ContractorId = "alice-01".parse().unwrap();
//! assert_eq!(id.as_str(), "alice-01");
//! assert!("../x".parse::<ContractorId>().is_err());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod capture;
pub mod dsp;
pub mod fault;
pub mod hardening;
pub mod project;
pub mod sealing;
pub mod store;
pub mod time;

/// The version of this crate, recorded in manifests and audit events.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
