//! Voxseal's cloud path: getting sealed samples from the outbox into S3 with credentials that last
//! minutes and can only write into the contractor's own prefixes.
//!
//! - [`policy`]: the one function that builds the contractor's session policy.
//! - [`credentials`]: the credentials type the broker returns; [`provider`]: where they come
//!   from (broker or STS) and the in-memory cache that refreshes them.
//! - [`uploader`]: drains the outbox into S3 (resumable multipart, checksums, never overwrite);
//!   [`object_key`]: where each object goes.
//! - [`grants`] and [`local_s3`]: the embedded S3 endpoint of the local stack, which enforces
//!   short-lived, prefix-scoped grants the way IAM and the session policy do on AWS.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod credentials;
pub mod grants;
pub mod local_s3;
pub mod object_key;
pub mod policy;
pub mod provider;
pub mod token_store;
pub mod uploader;
