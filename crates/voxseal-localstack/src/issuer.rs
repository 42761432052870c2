//! The local issuer: mints keys into a [`GrantStore`] that the embedded S3 endpoint enforces
//! (the demo stack and tests), in place of STS.

use voxseal_broker::config::ConfigError;
use voxseal_broker::issuer::{IssueFuture, Issued, Issuer, MAX_DURATION_SECS, Target};
use voxseal_cloud::policy;
use voxseal_core::project::ids::ContractorId;

use crate::grants::GrantStore;

/// Mints grants into a [`GrantStore`] that the embedded local S3 endpoint enforces.
#[derive(Debug, Clone)]
pub struct LocalIssuer {
    store: GrantStore,
    target: Target,
    lifetime: time::Duration,
}

impl LocalIssuer {
    /// An issuer minting grants valid for `lifetime_secs` (1..=3600: shorter than STS allows, so
    /// tests can watch credentials expire) into `store`.
    pub fn new(store: GrantStore, target: Target, lifetime_secs: u32) -> Result<Self, ConfigError> {
        if !(1..=MAX_DURATION_SECS).contains(&lifetime_secs) {
            return Err(ConfigError::Invalid(format!(
                "duration_secs {lifetime_secs} is outside 1..={MAX_DURATION_SECS} (local issuer)"
            )));
        }
        Ok(Self {
            store,
            target,
            lifetime: time::Duration::seconds(i64::from(lifetime_secs)),
        })
    }

    /// The store grants are minted into (share it with the local S3 endpoint).
    pub fn store(&self) -> &GrantStore {
        &self.store
    }
}

impl Issuer for LocalIssuer {
    fn name(&self) -> &'static str {
        "local"
    }
    fn issue<'a>(&'a self, contractor: &'a ContractorId) -> IssueFuture<'a> {
        Box::pin(async move {
            // Same validation as the STS path, so a bad target fails the same way.
            policy::session_policy(&self.target.policy_input(contractor))?;
            let t = &self.target;
            let credentials = self.store.mint(
                contractor,
                t.bucket(),
                t.region(),
                t.kms_key_arn(),
                self.lifetime,
            );
            Ok(Issued {
                credentials,
                request_id: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11 section 6: no session outlives 15 minutes, in the demo stack either.
    #[test]
    fn grants_are_at_most_900_seconds() {
        let target = Target::new(
            "voxseal-test",
            "us-east-1",
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .unwrap();
        for too_long in [901, 1800, 3600] {
            LocalIssuer::new(GrantStore::new(), target.clone(), too_long).unwrap_err();
        }
        LocalIssuer::new(GrantStore::new(), target, 900).unwrap();
    }
}
