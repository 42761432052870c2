//! "Try a demo": the embedded local stack (S3 endpoint + broker on 127.0.0.1) with a demo project
//! signed by the stack's own lead key, in a data directory of its own.
//!
//! Only builds with the `demo` feature contain it. Release builds with a pinned lead key are
//! built without it (src-tauri's build script refuses the combination), so their binary holds no
//! embedded endpoint, no local issuer and no code path that trusts a key other than the pinned
//! one. Without the feature, [`DemoStack`] is an empty enum: a value cannot exist.

use voxseal_core::store::workspace::Workspace;

use crate::{AppError, AppResult, ErrorKind};

#[cfg(feature = "demo")]
pub use with_demo::DemoStack;
#[cfg(not(feature = "demo"))]
pub use without_demo::DemoStack;

/// True when this build contains the demo.
pub const AVAILABLE: bool = cfg!(feature = "demo");

#[cfg(feature = "demo")]
mod with_demo {
    use super::*;
    use voxseal_localstack::devstack::{DEMO_CONTRACTOR, DevStack, DevStackInfo, DevStackOptions};

    /// The running demo stack.
    pub struct DemoStack(DevStack);

    impl DemoStack {
        /// Starts the stack in `<data dir>/local-stack` and installs its project, trusting the
        /// stack's own lead key for this (demo) data directory only.
        pub fn start(ws: &mut Workspace, rt: &tokio::runtime::Handle) -> AppResult<Self> {
            let dir = ws.root().join("local-stack");
            let stack = rt
                .block_on(DevStack::start(DevStackOptions::ephemeral(&dir)))
                .map_err(|e| {
                    AppError::new(
                        ErrorKind::Internal,
                        format!("cannot start the demo stack: {e}"),
                    )
                })?;
            ws.trust(stack.info.lead_pubkey.clone());
            ws.install_project(&stack.info.project_path)?;
            Ok(Self(stack))
        }

        /// The demo broker's URL.
        pub fn broker_url(&self) -> &str {
            &self.0.info.broker_url
        }

        /// A fresh one-time code for the demo contractor.
        pub fn enrollment_code(&self) -> Option<String> {
            self.0
                .enrollment_code(&DEMO_CONTRACTOR.parse().expect("valid id"))
                .ok()
        }

        /// The stack's details, for tests and diagnostics.
        pub fn info(&self) -> &DevStackInfo {
            &self.0.info
        }
    }
}

#[cfg(not(feature = "demo"))]
mod without_demo {
    use super::*;

    /// No demo in this build: no value of this type can exist.
    pub enum DemoStack {}

    impl DemoStack {
        /// Always refuses: this build has no demo.
        pub fn start(_ws: &mut Workspace, _rt: &tokio::runtime::Handle) -> AppResult<Self> {
            Err(AppError::new(
                ErrorKind::InvalidInput,
                "this build has no demo: it only joins the project it was built for",
            ))
        }

        /// Unreachable: no value exists.
        pub fn broker_url(&self) -> &str {
            match *self {}
        }

        /// Unreachable: no value exists.
        pub fn enrollment_code(&self) -> Option<String> {
            match *self {}
        }
    }
}
