//! Voxseal's cloud path: getting sealed samples from the outbox into S3 with credentials that last
//! minutes and can only write into the contractor's own prefixes.
//!
//! - [`policy`]: the one function that builds the contractor's session policy.
//! - [`credentials`]: the credentials type the broker returns; [`provider`]: where they come
//!   from (broker or STS) and the in-memory cache that refreshes them.
//! - [`uploader`]: drains the outbox into S3 (resumable multipart, checksums, never overwrite);
//!   [`object_key`]: where each object goes.
//!
//! The embedded S3 endpoint of the demo stack lives in `voxseal-localstack`, so the desktop
//! app's release build does not contain it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod credentials;
pub mod object_key;
pub mod policy;
pub mod provider;
pub mod token_store;
pub mod uploader;
