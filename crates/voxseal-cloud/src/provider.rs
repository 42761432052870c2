//! Where credentials come from, and the in-memory cache that refreshes them before they expire.
//!
//! Two sources return the same [`SessionCredentials`]: [`BrokerSource`] (contractors: the broker
//! over HTTPS with an enrollment token) and [`DirectSource`] (leads and QA with an AWS profile: STS
//! `AssumeRole` with the same session policy the broker uses). [`CachingProvider`] keeps the current
//! credentials in memory only and fetches new ones a few minutes before `Expiration` (20% of the
//! lifetime for short test grants); it is also the AWS SDK's credentials provider.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::{self, ProvideCredentials};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use voxseal_core::project::ids::ContractorId;

use crate::credentials::SessionCredentials;

/// Why credentials could not be obtained. Each variant says what the user can do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The broker (or AWS) could not be reached: not an error for the queue, which waits.
    #[error("offline: cannot reach {what} ({detail}); sealed samples stay queued and upload later")]
    Offline {
        /// What was unreachable.
        what: String,
        /// The last network error.
        detail: String,
    },
    /// The token is unknown or malformed.
    #[error(
        "the broker does not accept this device's enrollment token; enroll again with a new code from your project lead"
    )]
    Unauthorized,
    /// The contractor was revoked.
    #[error("this contractor's enrollment was revoked; contact your project lead")]
    Revoked,
    /// An enrollment code was refused.
    #[error("enrollment code refused: {0}")]
    BadCode(String),
    /// Too many requests; retry later.
    #[error("the broker is rate limiting this contractor; retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// The broker could not get credentials from AWS.
    #[error("the broker could not get credentials from AWS: {0}")]
    Upstream(String),
    /// This machine's clock is too far off for AWS signatures.
    #[error(
        "this computer's clock is {skew_s} s off the server's; AWS refuses requests beyond 15 minutes of skew: set the clock (enable network time) and retry"
    )]
    ClockSkew {
        /// Local minus server time, seconds.
        skew_s: i64,
    },
    /// The response was not what the protocol says.
    #[error("unexpected response from {what}: {detail}")]
    Protocol {
        /// Who answered.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// No enrollment token is stored on this machine.
    #[error("this machine is not enrolled: run `voxseal enroll join <code>`")]
    NotEnrolled,
}

impl CredentialError {
    /// True for conditions that go away by themselves (offline, rate limit): queue and retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Offline { .. } | Self::RateLimited { .. } | Self::Upstream(_)
        )
    }
}

/// A future returned by a [`CredentialSource`].
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SessionCredentials, CredentialError>> + Send + 'a>>;

/// Something that can mint fresh session credentials.
pub trait CredentialSource: Send + Sync + std::fmt::Debug {
    /// Fetches new credentials.
    fn fetch(&self) -> CredentialFuture<'_>;
}

/// Retries with exponential backoff and jitter: the credential fetches (full jitter) and the
/// app's upload worker (equal jitter).
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Attempts in all (>= 1).
    pub attempts: u32,
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// How much of each delay is random.
    pub jitter: Jitter,
}

/// The random part of a [`Backoff`] delay `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d/2, d]`: never much sooner than planned, still spread out, so that laptops
    /// that went offline together (a broker outage) do not all retry in the same second.
    Equal,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempts: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            jitter: Jitter::Full,
        }
    }
}

impl Backoff {
    /// The delay before retry number `n` (1-based): `min(cap, base * 2^(n-1))`, jittered.
    pub fn delay(&self, n: u32) -> Duration {
        let max = self
            .base
            .saturating_mul(1 << n.saturating_sub(1).min(16))
            .min(self.cap);
        let mut r = [0u8; 4];
        getrandom::getrandom(&mut r).expect("the OS random number generator failed");
        let f = f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX);
        match self.jitter {
            Jitter::Full => max.mul_f64(f),
            Jitter::Equal => max.mul_f64(0.5 + 0.5 * f),
        }
    }
}

/// The broker's error body: `{"error":{"kind":"...","message":"..."}}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    kind: String,
    message: String,
    #[serde(default)]
    retry_after_s: Option<u64>,
}

/// Credentials from the Voxseal broker.
pub struct BrokerSource {
    http: reqwest::Client,
    url: String,
    token: SecretString,
    backoff: Backoff,
}

impl std::fmt::Debug for BrokerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// An HTTP client with the timeouts Voxseal uses for the broker.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("voxseal/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid")
}

impl BrokerSource {
    /// A source for the broker at `url` (e.g. `https://broker.example.com`) with `token`.
    pub fn new(url: &str, token: SecretString) -> Self {
        Self {
            http: http_client(),
            url: url.trim_end_matches('/').to_owned(),
            token,
            backoff: Backoff::default(),
        }
    }

    /// Changes the retry policy.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    async fn once(&self) -> Result<SessionCredentials, (CredentialError, Option<Duration>)> {
        let resp = self
            .http
            .post(format!("{}/v1/sessions", self.url))
            .bearer_auth(self.token.expose_secret())
            .json(&serde_json::json!({}))
            .send()
            .await
            .map_err(|e| (offline(&self.url, &e), None))?;
        check_skew(&resp).map_err(|e| (e, None))?;
        let status = resp.status();
        if status.is_success() {
            return resp.json::<SessionCredentials>().await.map_err(|e| {
                (
                    CredentialError::Protocol {
                        what: "the broker".into(),
                        detail: e.to_string(),
                    },
                    None,
                )
            });
        }
        Err(broker_error(resp).await)
    }

    /// Fetches the lead-signed project config from the broker, proving a valid enrollment code
    /// (before enrolling) or a device token (checking for a newer config). The caller verifies
    /// it: the broker cannot forge the lead's signature.
    pub async fn fetch_project(
        url: &str,
        proof: ProjectProof<'_>,
    ) -> Result<SignedProject, CredentialError> {
        let url = url.trim_end_matches('/');
        let req = http_client().post(format!("{url}/v1/project"));
        let req = match proof {
            ProjectProof::Code(code) => req.json(&serde_json::json!({ "code": code })),
            ProjectProof::Token(token) => req.bearer_auth(token.expose_secret()),
        };
        let resp = req.send().await.map_err(|e| offline(url, &e))?;
        check_skew(&resp)?;
        if resp.status().is_success() {
            return resp.json().await.map_err(|e| CredentialError::Protocol {
                what: "the broker's project config".into(),
                detail: e.to_string(),
            });
        }
        Err(broker_error(resp).await.0)
    }

    /// Exchanges a one-time enrollment code for this device's token.
    pub async fn enroll(
        url: &str,
        code: &str,
    ) -> Result<(ContractorId, SecretString), CredentialError> {
        #[derive(serde::Deserialize)]
        struct Enrolled {
            contractor: ContractorId,
            token: SecretString,
        }
        let url = url.trim_end_matches('/');
        let resp = http_client()
            .post(format!("{url}/v1/enroll"))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await
            .map_err(|e| offline(url, &e))?;
        check_skew(&resp)?;
        if resp.status().is_success() {
            let e: Enrolled = resp.json().await.map_err(|e| CredentialError::Protocol {
                what: "the broker".into(),
                detail: e.to_string(),
            })?;
            return Ok((e.contractor, e.token));
        }
        Err(broker_error(resp).await.0)
    }
}

/// What proves the right to read the project config.
#[derive(Clone, Copy)]
pub enum ProjectProof<'a> {
    /// A one-time enrollment code, not yet used.
    Code(&'a str),
    /// This device's token.
    Token(&'a SecretString),
}

/// A project config and its minisign signature, as the broker serves them.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedProject {
    /// The config's text (`project.toml`).
    pub config: String,
    /// Its signature (`project.toml.sig`).
    pub signature: String,
    /// The contractor the presented code or token belongs to.
    #[serde(default)]
    pub contractor: Option<ContractorId>,
}

fn offline(url: &str, e: &reqwest::Error) -> CredentialError {
    let detail = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    CredentialError::Offline {
        what: format!("the broker at {url}"),
        detail,
    }
}

/// Refuses to go on when the server's clock differs from ours by more than 15 minutes.
fn check_skew(resp: &reqwest::Response) -> Result<(), CredentialError> {
    let Some(date) = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
    else {
        return Ok(());
    };
    let Ok(server) = OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
    else {
        return Ok(());
    };
    let skew = (OffsetDateTime::now_utc() - server).whole_seconds();
    if skew.abs() > 15 * 60 {
        Err(CredentialError::ClockSkew { skew_s: skew })
    } else {
        Ok(())
    }
}

async fn broker_error(resp: reqwest::Response) -> (CredentialError, Option<Duration>) {
    let status = resp.status();
    let header_retry = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body: Option<ErrorBody> = resp.json().await.ok();
    let (kind, message, retry) = match body {
        Some(b) => (
            b.error.kind,
            b.error.message,
            b.error.retry_after_s.or(header_retry),
        ),
        None => (String::new(), format!("HTTP {status}"), header_retry),
    };
    let err = match kind.as_str() {
        "unauthorized" => CredentialError::Unauthorized,
        "revoked" => CredentialError::Revoked,
        "invalid_code" | "expired_code" => CredentialError::BadCode(message),
        "rate_limited" => CredentialError::RateLimited {
            retry_after_s: retry.unwrap_or(60),
        },
        "upstream" => CredentialError::Upstream(message),
        _ if status.is_server_error() => CredentialError::Offline {
            what: "the broker".into(),
            detail: format!("HTTP {status}"),
        },
        _ => CredentialError::Protocol {
            what: "the broker".into(),
            detail: format!("HTTP {status}: {message}"),
        },
    };
    (err, retry.map(Duration::from_secs))
}

impl CredentialSource for BrokerSource {
    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(async move {
            let mut attempt = 1;
            loop {
                match self.once().await {
                    Ok(c) => return Ok(c),
                    Err((e, retry_after))
                        if e.is_transient() && attempt < self.backoff.attempts =>
                    {
                        // Honour Retry-After only when it is short; long waits are the queue's job.
                        let wait = retry_after
                            .filter(|d| *d <= self.backoff.cap)
                            .unwrap_or_else(|| self.backoff.delay(attempt));
                        if matches!(e, CredentialError::RateLimited { .. })
                            && retry_after.is_some_and(|d| d > self.backoff.cap)
                        {
                            return Err(e);
                        }
                        tracing::debug!(attempt, ?wait, error = %e, "retrying the broker");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    Err((e, _)) => return Err(e),
                }
            }
        })
    }
}

/// Credentials straight from STS with the caller's AWS profile (leads, QA).
#[derive(Debug, Clone)]
pub struct DirectSource {
    /// The STS client (from the AWS profile).
    pub sts: aws_sdk_sts::Client,
    /// The upload role to assume.
    pub role_arn: String,
    /// Who the session is for.
    pub contractor: ContractorId,
    /// Bucket, region and key for the policy.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// KMS key ARN.
    pub kms_key_arn: String,
    /// Seconds, 900..=3600.
    pub duration_secs: i32,
}

impl DirectSource {
    /// Builds the STS client from an AWS profile (or the default chain).
    pub async fn from_profile(
        profile: Option<&str>,
        role_arn: String,
        contractor: ContractorId,
        bucket: String,
        region: String,
        kms_key_arn: String,
    ) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.clone()));
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        let sts = aws_sdk_sts::Client::new(&loader.load().await);
        Self {
            sts,
            role_arn,
            contractor,
            bucket,
            region,
            kms_key_arn,
            duration_secs: 900,
        }
    }
}

impl CredentialSource for DirectSource {
    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(async move {
            let policy = crate::policy::session_policy(&crate::policy::PolicyInput {
                bucket: &self.bucket,
                kms_key_arn: &self.kms_key_arn,
                region: &self.region,
                contractor: &self.contractor,
            })
            .map_err(|e| CredentialError::Protocol {
                what: "the project config".into(),
                detail: e.to_string(),
            })?;
            let out = self
                .sts
                .assume_role()
                .role_arn(&self.role_arn)
                .role_session_name(format!("contractor-{}", self.contractor))
                .source_identity(self.contractor.as_str())
                .duration_seconds(self.duration_secs)
                .policy(policy)
                .send()
                .await
                .map_err(|e| {
                    use aws_sdk_sts::error::DisplayErrorContext;
                    match &e {
                        aws_sdk_sts::error::SdkError::DispatchFailure(_)
                        | aws_sdk_sts::error::SdkError::TimeoutError(_) => {
                            CredentialError::Offline {
                                what: "AWS STS".into(),
                                detail: DisplayErrorContext(&e).to_string(),
                            }
                        }
                        _ => CredentialError::Upstream(DisplayErrorContext(&e).to_string()),
                    }
                })?;
            let c = out
                .credentials
                .ok_or_else(|| CredentialError::Upstream("STS returned no credentials".into()))?;
            let expiration = OffsetDateTime::from_unix_timestamp(c.expiration.secs())
                .map_err(|e| CredentialError::Upstream(e.to_string()))?;
            Ok(SessionCredentials {
                version: 1,
                access_key_id: c.access_key_id,
                secret_access_key: SecretString::from(c.secret_access_key),
                session_token: SecretString::from(c.session_token),
                expiration,
                bucket: self.bucket.clone(),
                region: self.region.clone(),
                prefixes: crate::policy::contractor_prefixes(&self.contractor).to_vec(),
                kms_key_arn: self.kms_key_arn.clone(),
            })
        })
    }
}

#[derive(Clone)]
struct Cached {
    creds: SessionCredentials,
    refresh_at: OffsetDateTime,
}

/// Keeps the current credentials in memory and refreshes them before they expire.
#[derive(Clone)]
pub struct CachingProvider {
    source: Arc<dyn CredentialSource>,
    cached: Arc<Mutex<Option<Cached>>>,
}

impl std::fmt::Debug for CachingProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingProvider")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl CachingProvider {
    /// Wraps a source.
    pub fn new(source: Arc<dyn CredentialSource>) -> Self {
        Self {
            source,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// The current credentials, fetching new ones when none are cached or they are due.
    pub async fn current(&self) -> Result<SessionCredentials, CredentialError> {
        let mut cached = self.cached.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(c) = cached.as_ref()
            && now < c.refresh_at
        {
            return Ok(c.creds.clone());
        }
        let creds = self.source.fetch().await?;
        let lifetime = creds.expiration - now;
        if lifetime <= time::Duration::ZERO {
            return Err(CredentialError::Protocol {
                what: "the credential source".into(),
                detail: "it returned credentials that have already expired (check this computer's clock)".into(),
            });
        }
        let margin = (lifetime / 5i32).min(time::Duration::minutes(5));
        let refresh_at = creds.expiration - margin;
        tracing::debug!(expires = %creds.expiration, %refresh_at, "new upload credentials");
        *cached = Some(Cached {
            creds: creds.clone(),
            refresh_at,
        });
        Ok(creds)
    }

    /// When the cached credentials will be refreshed.
    pub async fn refresh_at(&self) -> Option<OffsetDateTime> {
        self.cached.lock().await.as_ref().map(|c| c.refresh_at)
    }

    /// Forgets the cached credentials (after the server said they expired).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

impl ProvideCredentials for CachingProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let creds = self
                .current()
                .await
                .map_err(provider::error::CredentialsError::provider_error)?;
            let refresh_at = self.refresh_at().await.unwrap_or(creds.expiration);
            Ok(creds.to_aws(refresh_at))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Counting {
        calls: AtomicU32,
        lifetime: time::Duration,
    }

    impl CredentialSource for Counting {
        fn fetch(&self) -> CredentialFuture<'_> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                Ok(SessionCredentials {
                    version: 1,
                    access_key_id: format!("ASIA{n}"),
                    secret_access_key: SecretString::from("s".to_owned()),
                    session_token: SecretString::from("t".to_owned()),
                    expiration: OffsetDateTime::now_utc() + self.lifetime,
                    bucket: "b".into(),
                    region: "us-east-1".into(),
                    prefixes: vec![],
                    kms_key_arn: "k".into(),
                })
            })
        }
    }

    #[tokio::test]
    async fn caches_until_the_refresh_margin_then_refetches() {
        let src = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime: time::Duration::milliseconds(1500),
        });
        let p = CachingProvider::new(src.clone());
        assert_eq!(p.current().await.unwrap().access_key_id, "ASIA0");
        assert_eq!(p.current().await.unwrap().access_key_id, "ASIA0");
        // 20% of 1.5 s = 0.3 s before expiry.
        let refresh = p.refresh_at().await.unwrap();
        let left = refresh - OffsetDateTime::now_utc();
        assert!(
            left > time::Duration::milliseconds(1000) && left < time::Duration::milliseconds(1250),
            "{left}"
        );
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(p.current().await.unwrap().access_key_id, "ASIA1");
        p.invalidate().await;
        assert_eq!(p.current().await.unwrap().access_key_id, "ASIA2");
    }

    #[tokio::test]
    async fn long_lifetimes_refresh_five_minutes_early() {
        let src = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime: time::Duration::seconds(3600),
        });
        let p = CachingProvider::new(src);
        let c = p.current().await.unwrap();
        let margin = c.expiration - p.refresh_at().await.unwrap();
        assert_eq!(margin, time::Duration::minutes(5));
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let b = Backoff::default();
        for n in 1..10 {
            let d = b.delay(n);
            assert!(d <= b.cap, "{d:?}");
        }
        let samples: std::collections::HashSet<_> =
            (0..20).map(|_| b.delay(3).as_millis()).collect();
        assert!(samples.len() > 5, "jitter");
    }

    #[test]
    fn equal_jitter_waits_between_half_and_all_of_the_delay() {
        let b = Backoff {
            attempts: u32::MAX,
            base: Duration::from_secs(60),
            cap: Duration::from_secs(300),
            jitter: Jitter::Equal,
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let d = b.delay(2);
            assert!(
                d >= Duration::from_secs(60) && d <= Duration::from_secs(120),
                "{d:?}"
            );
            seen.insert(d.as_millis());
        }
        assert!(seen.len() > 10, "not spread: {seen:?}");
        assert!(b.delay(40) <= b.cap);
    }
}
