//! Voxseal's demo and test stack: everything needed to run the whole pipeline on one machine
//! without an AWS account, on 127.0.0.1.
//!
//! - [`local_s3`]: an embedded S3 endpoint (s3s + s3s-fs) with SigV4 and an access hook that
//!   enforces short-lived, prefix-scoped [`grants`] (operation, key prefix, expiry, SSE-KMS key).
//! - [`issuer::LocalIssuer`]: a broker issuer that mints such grants instead of calling STS.
//! - [`devstack`]: both servers with demo keys, a demo project signed by the stack's own lead key
//!   and a demo contractor (`voxseal dev-stack`, the desktop app's "Try a demo", tests).
//!
//! A release app with a pinned lead key is built without this crate (the desktop crate's `demo`
//! feature is off there), so production builds contain no code that trusts another key or talks
//! to a local endpoint.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod devstack;
pub mod grants;
pub mod issuer;
pub mod local_s3;
