//! Joining a project (an enrollment link or the demo) and giving consent.

use voxseal_cloud::provider::BrokerSource;
use voxseal_cloud::token_store::TokenStore;
use voxseal_core::project::enroll_link::EnrollLink;

use crate::types::AppState;
use crate::{App, AppError, AppResult, ErrorKind, internal, invalid, local_passphrase};

impl App {
    /// Enrolls this device with a `voxseal://enroll` link (or, in the demo, the demo code).
    /// In a project, `switch` allows replacing the installed project with the link's.
    pub fn enroll(&self, input: &str, switch: bool) -> AppResult<AppState> {
        match &self.inner.demo {
            Some(stack) => self.join_demo(stack.broker_url().to_owned(), input)?,
            None => self.join_project(input, switch)?,
        }
        self.state()
    }

    /// Enrolls with the running demo stack's broker (a link from an earlier demo run names an
    /// old port: only its code is used).
    pub(crate) fn join_demo(&self, url: String, input: &str) -> AppResult<()> {
        let broker =
            voxseal_core::project::enroll_link::BrokerUrl::parse(&url).map_err(internal)?;
        let code = match EnrollLink::parse(input, None) {
            Ok(link) => link.code,
            Err(_) => {
                EnrollLink::parse(input, Some(&broker))
                    .map_err(|e| invalid(e.to_string()))?
                    .code
            }
        };
        let (contractor, token) = self.inner.rt.block_on(BrokerSource::enroll(&url, &code))?;
        let pass = local_passphrase(self.inner.ws.root())?;
        TokenStore::new(self.inner.ws.root())
            .save(&contractor, &url, &token, true, Some(&pass))
            .map_err(|e| AppError::new(ErrorKind::Storage, e.to_string()))?;
        self.enrolled(contractor, &url, token)
    }

    /// Records the contractor's consent to the project's consent text.
    pub fn give_consent(&self) -> AppResult<AppState> {
        let config = self.config()?;
        self.inner.ws.give_consent(&config)?;
        self.state()
    }
}
