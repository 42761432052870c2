//! Issuers: what turns an authenticated contractor into [`SessionCredentials`].
//!
//! - [`StsIssuer`]: STS `AssumeRole` with the contractor's session policy (production, and moto in
//!   tests).
//! - `voxseal_localstack::issuer::LocalIssuer` (the demo/test stack) mints keys that its
//!   embedded S3 endpoint enforces; it implements [`Issuer`] from outside this crate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_sts::error::DisplayErrorContext;
use aws_sdk_sts::operation::RequestId;
use secrecy::SecretString;
use time::OffsetDateTime;
use voxseal_cloud::credentials::SessionCredentials;
use voxseal_cloud::policy::{self, PolicyError, PolicyInput};
use voxseal_core::project::ids::ContractorId;

use crate::config::ConfigError;

/// STS's shortest session, in seconds.
pub const STS_MIN_DURATION_SECS: u32 = 900;
/// The longest session the broker hands out, in seconds (15 minutes). Revoking a contractor in
/// the registry stops new sessions at once; this bounds how long the last one keeps working
/// (docs/threat-model.md). With STS it is also the shortest, so STS sessions are exactly 900 s.
pub const MAX_DURATION_SECS: u32 = 900;

/// Credentials and what the audit log should record about where they came from.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The credentials for the client.
    pub credentials: SessionCredentials,
    /// The upstream request id (STS's `x-amzn-RequestId`), for matching CloudTrail.
    pub request_id: Option<String>,
}

/// Why credentials could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The credential service failed or refused. The detail is for the server log only.
    #[error("the credential service failed: {detail}")]
    Upstream {
        /// What went wrong (server log only; never sent to clients).
        detail: String,
        /// The upstream request id, when the service returned one.
        request_id: Option<String>,
    },
    /// The session policy could not be built (a configuration error).
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// A boxed, sendable future returned by [`Issuer::issue`].
pub type IssueFuture<'a> = Pin<Box<dyn Future<Output = Result<Issued, IssueError>> + Send + 'a>>;

/// Something that issues short-lived, prefix-scoped credentials for a contractor.
pub trait Issuer: Send + Sync + 'static {
    /// A short name for logs and the audit trail (`sts`, `local`).
    fn name(&self) -> &'static str;
    /// Issues credentials for `contractor` (already authenticated and not revoked).
    fn issue<'a>(&'a self, contractor: &'a ContractorId) -> IssueFuture<'a>;
}

/// Where uploads go: the project's bucket, region and KMS key (validated on construction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    bucket: String,
    region: String,
    kms_key_arn: String,
}

impl Target {
    /// Checks the three with [`voxseal_cloud::policy::validate`].
    pub fn new(bucket: &str, region: &str, kms_key_arn: &str) -> Result<Self, PolicyError> {
        policy::validate(bucket, kms_key_arn, region)?;
        Ok(Self {
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            kms_key_arn: kms_key_arn.to_owned(),
        })
    }
    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// The KMS key ARN.
    pub fn kms_key_arn(&self) -> &str {
        &self.kms_key_arn
    }
    /// The session-policy input for `contractor` in this target.
    pub fn policy_input<'a>(&'a self, contractor: &'a ContractorId) -> PolicyInput<'a> {
        PolicyInput {
            bucket: &self.bucket,
            kms_key_arn: &self.kms_key_arn,
            region: &self.region,
            contractor,
        }
    }
}

/// `RoleSessionName` for a contractor: `contractor-<id>`, cut to STS's 64 characters (ids longer
/// than 53 characters are cut; `SourceIdentity` always carries the whole id).
pub fn role_session_name(contractor: &ContractorId) -> String {
    let mut name = format!("contractor-{}", contractor.as_str());
    name.truncate(64);
    name
}

/// Checks that a string looks like an IAM role ARN (`arn:<partition>:iam::<12 digits>:role/<name>`).
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|c| c.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 512
                && n.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&c))
        })
}

/// STS `AssumeRole` with the contractor's session policy.
pub struct StsIssuer {
    client: aws_sdk_sts::Client,
    role_arn: String,
    target: Target,
    duration_secs: u32,
}

impl fmt::Debug for StsIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsIssuer")
            .field("role_arn", &self.role_arn)
            .field("target", &self.target)
            .field("duration_secs", &self.duration_secs)
            .finish_non_exhaustive()
    }
}

impl StsIssuer {
    /// An issuer using `client` (whose credentials must be allowed to assume `role_arn`).
    /// `duration_secs` must be 900 ([`STS_MIN_DURATION_SECS`] = [`MAX_DURATION_SECS`]).
    pub fn new(
        client: aws_sdk_sts::Client,
        role_arn: &str,
        target: Target,
        duration_secs: u32,
    ) -> Result<Self, ConfigError> {
        if !is_role_arn(role_arn) {
            return Err(ConfigError::Invalid(format!(
                "role_arn {:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                role_arn.chars().take(100).collect::<String>()
            )));
        }
        if !(STS_MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&duration_secs) {
            return Err(ConfigError::Invalid(format!(
                "duration_secs {duration_secs} is outside {STS_MIN_DURATION_SECS}..={MAX_DURATION_SECS} (STS's \
                 minimum and Voxseal's maximum)"
            )));
        }
        Ok(Self {
            client,
            role_arn: role_arn.to_owned(),
            target,
            duration_secs,
        })
    }

    /// An issuer whose STS client takes its credentials from the default AWS chain (environment,
    /// profile, web identity, container or instance role), in `target`'s region, optionally at
    /// another endpoint (moto in tests).
    pub async fn from_environment(
        role_arn: &str,
        target: Target,
        duration_secs: u32,
        endpoint: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(target.region.clone()))
            .load()
            .await;
        let mut conf = aws_sdk_sts::config::Builder::from(&shared);
        if let Some(url) = endpoint {
            conf = conf.endpoint_url(url);
        }
        Self::new(
            aws_sdk_sts::Client::from_conf(conf.build()),
            role_arn,
            target,
            duration_secs,
        )
    }

    async fn assume(&self, contractor: &ContractorId) -> Result<Issued, IssueError> {
        let policy = policy::session_policy(&self.target.policy_input(contractor))?;
        let out = self
            .client
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(role_session_name(contractor))
            .source_identity(contractor.as_str())
            .duration_seconds(self.duration_secs as i32)
            .policy(policy)
            .send()
            .await
            .map_err(|e| IssueError::Upstream {
                request_id: e.request_id().map(str::to_owned),
                // moto's STS error bodies do not parse in aws-sdk-sts (the code shows as none), so
                // keep the whole context chain for the log.
                detail: DisplayErrorContext(&e).to_string(),
            })?;
        let request_id = out.request_id().map(str::to_owned);
        let upstream = |detail: &str| IssueError::Upstream {
            detail: detail.to_owned(),
            request_id: request_id.clone(),
        };
        let c = out
            .credentials()
            .ok_or_else(|| upstream("AssumeRole returned no credentials"))?;
        let exp = c.expiration();
        let expiration = OffsetDateTime::from_unix_timestamp(exp.secs())
            .map(|t| t + time::Duration::nanoseconds(i64::from(exp.subsec_nanos())))
            .map_err(|_| upstream("AssumeRole returned an impossible expiration"))?;
        Ok(Issued {
            credentials: SessionCredentials {
                version: 1,
                access_key_id: c.access_key_id().to_owned(),
                secret_access_key: SecretString::from(c.secret_access_key().to_owned()),
                session_token: SecretString::from(c.session_token().to_owned()),
                expiration,
                bucket: self.target.bucket.clone(),
                region: self.target.region.clone(),
                prefixes: policy::contractor_prefixes(contractor).to_vec(),
                kms_key_arn: self.target.kms_key_arn.clone(),
            },
            request_id,
        })
    }
}

impl Issuer for StsIssuer {
    fn name(&self) -> &'static str {
        "sts"
    }
    fn issue<'a>(&'a self, contractor: &'a ContractorId) -> IssueFuture<'a> {
        Box::pin(self.assume(contractor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts() {
        let short: ContractorId = "alice-01".parse().unwrap();
        assert_eq!(role_session_name(&short), "contractor-alice-01");
        let long: ContractorId = "a".repeat(63).parse().unwrap();
        assert_eq!(role_session_name(&long).len(), 64);
    }

    /// Issue 11 section 6: no session outlives 15 minutes, whatever the caller asks for.
    #[test]
    fn sessions_are_at_most_900_seconds() {
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .build();
        let client = aws_sdk_sts::Client::from_conf(conf);
        let target = Target::new(
            "voxseal-test",
            "us-east-1",
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .unwrap();
        let role = "arn:aws:iam::123456789012:role/voxseal-contractor";
        StsIssuer::new(client.clone(), role, target.clone(), 900).unwrap();
        for too_long in [901, 1800, 3600, 43_200] {
            let e = StsIssuer::new(client.clone(), role, target.clone(), too_long).unwrap_err();
            assert!(e.to_string().contains("900..=900"), "{e}");
        }
    }

    #[test]
    fn role_arns() {
        assert!(is_role_arn(
            "arn:aws:iam::123456789012:role/voxseal-contractor"
        ));
        assert!(is_role_arn("arn:aws-us-gov:iam::123456789012:role/path/x"));
        for bad in [
            "",
            "arn:aws:iam::123:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/a b",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }
}
