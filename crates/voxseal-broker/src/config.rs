//! The broker's configuration: a TOML file, then `VOXSEAL_BROKER_*` environment overrides.
//!
//! ```toml
//! bind = "127.0.0.1:8787"                 # default
//! registry = "registry.toml"              # relative paths are relative to this file
//! audit_log = "broker-audit.log"
//! bucket = "voxseal-prod"
//! region = "eu-west-1"
//! kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
//! role_arn = "arn:aws:iam::123456789012:role/voxseal-contractor"   # required for issuer = "sts"
//! issuer = "sts"                          # "sts" (default) or "local"
//! duration_secs = 900                     # default and maximum 900 (sts: exactly 900; local: 1..=900)
//! max_body_bytes = 4096                   # default
//! # sts_endpoint = "http://127.0.0.1:5000" # only for tests against moto
//! project = "project.toml"                # the lead-signed project config served to
//!                                         # enrolling apps (project.toml.sig next to it)
//! trusted_proxies = []                    # default: none; e.g. ["127.0.0.1"] behind a local nginx
//! audit_max_bytes = 67108864              # default 64 MiB: the audit log is rotated at this size
//! audit_keep = 4                          # default: rotated files kept (<audit_log>.1 .. .4)
//!
//! [rate_limit]                            # per contractor (verified session requests), token bucket
//! burst = 10                              # default
//! refill_secs = 6                         # default: one request regained every 6 s
//!
//! [client_limit]                          # per client address, counts refused requests only
//! burst = 20                              # default
//! refill_secs = 5                         # default
//!
//! [connections]
//! max = 1024                              # default: open connections at most
//! per_address = 32                        # default: per client address (not for trusted proxies)
//! header_timeout_secs = 10                # default: to send a request's headers (and idle keep-alive)
//! request_timeout_secs = 30               # default: to send the body and get the answer
//! ```
//!
//! Every key can be overridden by an environment variable: `VOXSEAL_BROKER_BIND`,
//! `_REGISTRY`, `_AUDIT_LOG`, `_BUCKET`, `_REGION`, `_KMS_KEY_ARN`, `_ROLE_ARN`, `_ISSUER`,
//! `_DURATION_SECS`, `_MAX_BODY_BYTES`, `_STS_ENDPOINT`, `_PROJECT`, `_RATE_BURST`,
//! `_RATE_REFILL_SECS`,
//! `_TRUSTED_PROXIES` (comma-separated), `_AUDIT_MAX_BYTES`, `_AUDIT_KEEP`, `_CLIENT_BURST`,
//! `_CLIENT_REFILL_SECS`, `_MAX_CONNECTIONS`, `_MAX_CONNECTIONS_PER_ADDRESS`,
//! `_HEADER_TIMEOUT_SECS`, `_REQUEST_TIMEOUT_SECS`.
//!
//! `X-Forwarded-For` is believed only from `trusted_proxies`; without them, every client behind a
//! proxy shares the proxy's address (and its refusal budget).
//! The AWS credentials the STS issuer uses come from the standard AWS chain (`AWS_*` variables,
//! profile, instance or container role), never from this file.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::ClientLimits;
use crate::issuer::{self, MAX_DURATION_SECS, STS_MIN_DURATION_SECS, Target};
use crate::ratelimit::RateLimit;
use crate::serve::ServeLimits;

/// The default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8787";
/// The default session length, in seconds (STS's minimum).
pub const DEFAULT_DURATION_SECS: u32 = 900;
/// The default request body limit, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4096;
/// The environment variables' prefix.
pub const ENV_PREFIX: &str = "VOXSEAL_BROKER_";

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not valid TOML for this configuration, or an override does not parse.
    #[error("config {origin}: {message}")]
    Parse {
        /// The file or environment variable.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config: {0}")]
    Invalid(String),
}

/// Which issuer hands out credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    /// STS `AssumeRole` (production).
    #[default]
    Sts,
    /// Grants for the embedded local S3 endpoint (dev stack, tests).
    Local,
}

impl FromStr for IssuerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sts" => Ok(Self::Sts),
            "local" => Ok(Self::Local),
            _ => Err("expected \"sts\" or \"local\"".into()),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub bind: SocketAddr,
    /// The enrollment registry file.
    pub registry: PathBuf,
    /// The broker's audit log (hash-chained JSON lines).
    pub audit_log: PathBuf,
    /// Bucket, region and KMS key.
    pub target: Target,
    /// Which issuer.
    pub issuer: IssuerKind,
    /// The role STS assumes (required for [`IssuerKind::Sts`]).
    pub role_arn: Option<String>,
    /// Session length in seconds.
    pub duration_secs: u32,
    /// Per-contractor rate limit.
    pub rate_limit: RateLimit,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// STS endpoint override (moto).
    pub sts_endpoint: Option<String>,
    /// The lead-signed project config (with `<file>.sig`) served by `POST /v1/project`.
    pub project: Option<PathBuf>,
    /// Limits on unauthenticated clients and the audit log's size.
    pub client_limits: ClientLimits,
    /// Connection limits.
    pub serve_limits: ServeLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    bind: Option<String>,
    registry: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    bucket: Option<String>,
    region: Option<String>,
    kms_key_arn: Option<String>,
    role_arn: Option<String>,
    issuer: Option<IssuerKind>,
    duration_secs: Option<u32>,
    max_body_bytes: Option<usize>,
    sts_endpoint: Option<String>,
    project: Option<PathBuf>,
    rate_limit: Option<RawRate>,
    trusted_proxies: Option<AddressList>,
    audit_max_bytes: Option<u64>,
    audit_keep: Option<u32>,
    client_limit: Option<RawRate>,
    connections: Option<RawConnections>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnections {
    max: Option<usize>,
    per_address: Option<usize>,
    header_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
}

/// IP addresses: a TOML array, or comma-separated in an environment variable.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
struct AddressList(Vec<IpAddr>);

impl FromStr for AddressList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse()
                    .map_err(|_| format!("{a:?} is not an IP address (no ranges or names)"))
            })
            .collect::<Result<_, _>>()
            .map(AddressList)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    burst: Option<u32>,
    refill_secs: Option<f64>,
}

fn env_parse<T: FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    key: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let name = format!("{ENV_PREFIX}{key}");
    match env(&name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ConfigError::Parse {
                origin: name,
                message: e.to_string(),
            }),
    }
}

impl Config {
    /// Reads `file` (if any), applies the `VOXSEAL_BROKER_*` environment variables, validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::from_sources(file, &|k| std::env::var(k).ok())
    }

    /// Like [`load`](Self::load) with the environment given as a function (for tests).
    pub fn from_sources(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut raw = match file {
            None => RawConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                let mut raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    origin: p.display().to_string(),
                    message: e.to_string(),
                })?;
                // Relative paths in the file are relative to the file.
                let base = voxseal_core::store::fsutil::parent_dir(p);
                for path in [&mut raw.registry, &mut raw.audit_log, &mut raw.project]
                    .into_iter()
                    .flatten()
                {
                    if path.is_relative() {
                        *path = base.join(&*path);
                    }
                }
                raw
            }
        };
        macro_rules! over {
            ($field:expr, $key:literal) => {
                if let Some(v) = env_parse(env, $key)? {
                    $field = Some(v);
                }
            };
        }
        over!(raw.bind, "BIND");
        over!(raw.registry, "REGISTRY");
        over!(raw.audit_log, "AUDIT_LOG");
        over!(raw.bucket, "BUCKET");
        over!(raw.region, "REGION");
        over!(raw.kms_key_arn, "KMS_KEY_ARN");
        over!(raw.role_arn, "ROLE_ARN");
        over!(raw.issuer, "ISSUER");
        over!(raw.duration_secs, "DURATION_SECS");
        over!(raw.max_body_bytes, "MAX_BODY_BYTES");
        over!(raw.sts_endpoint, "STS_ENDPOINT");
        over!(raw.project, "PROJECT");
        over!(raw.trusted_proxies, "TRUSTED_PROXIES");
        over!(raw.audit_max_bytes, "AUDIT_MAX_BYTES");
        over!(raw.audit_keep, "AUDIT_KEEP");
        let mut rate = raw.rate_limit.take().unwrap_or_default();
        over!(rate.burst, "RATE_BURST");
        over!(rate.refill_secs, "RATE_REFILL_SECS");
        let mut client = raw.client_limit.take().unwrap_or_default();
        over!(client.burst, "CLIENT_BURST");
        over!(client.refill_secs, "CLIENT_REFILL_SECS");
        let mut conn = raw.connections.take().unwrap_or_default();
        over!(conn.max, "MAX_CONNECTIONS");
        over!(conn.per_address, "MAX_CONNECTIONS_PER_ADDRESS");
        over!(conn.header_timeout_secs, "HEADER_TIMEOUT_SECS");
        over!(conn.request_timeout_secs, "REQUEST_TIMEOUT_SECS");
        let (client_limits, serve_limits) = Self::validate_limits(&mut raw, client, conn)?;
        let mut config = Self::validate(raw, rate)?;
        config.client_limits = client_limits;
        config.serve_limits = serve_limits;
        Ok(config)
    }

    fn validate_limits(
        raw: &mut RawConfig,
        client: RawRate,
        conn: RawConnections,
    ) -> Result<(ClientLimits, ServeLimits), ConfigError> {
        let (cd, sd) = (ClientLimits::default(), ServeLimits::default());
        let refusals = RateLimit {
            burst: client.burst.unwrap_or(cd.refusals.burst),
            refill_secs: client.refill_secs.unwrap_or(cd.refusals.refill_secs),
        };
        if !refusals.is_valid() {
            return Err(ConfigError::Invalid(format!(
                "client_limit burst {} / refill_secs {} is not usable (burst >= 1, 0 < refill_secs <= 86400)",
                refusals.burst, refusals.refill_secs
            )));
        }
        let secs = |v: Option<u64>, default: Duration, key: &str| match v {
            None => Ok(default),
            Some(s @ 1..=3600) => Ok(Duration::from_secs(s)),
            Some(s) => Err(ConfigError::Invalid(format!(
                "connections.{key} {s} is outside 1..=3600"
            ))),
        };
        let serve = ServeLimits {
            max_connections: conn.max.unwrap_or(sd.max_connections),
            max_connections_per_address: conn.per_address.unwrap_or(sd.max_connections_per_address),
            header_timeout: secs(
                conn.header_timeout_secs,
                sd.header_timeout,
                "header_timeout_secs",
            )?,
            flush_interval: sd.flush_interval,
        };
        if serve.max_connections == 0
            || serve.max_connections_per_address == 0
            || serve.max_connections_per_address > serve.max_connections
        {
            return Err(ConfigError::Invalid(format!(
                "connections max {} / per_address {} is not usable (1 <= per_address <= max)",
                serve.max_connections, serve.max_connections_per_address
            )));
        }
        let audit_max_bytes = raw.audit_max_bytes.unwrap_or(cd.audit_max_bytes);
        if audit_max_bytes < 1 << 20 {
            return Err(ConfigError::Invalid(format!(
                "audit_max_bytes {audit_max_bytes} is below 1048576 (1 MiB)"
            )));
        }
        let audit_keep = raw.audit_keep.unwrap_or(cd.audit_keep);
        if !(1..=1000).contains(&audit_keep) {
            return Err(ConfigError::Invalid(format!(
                "audit_keep {audit_keep} is outside 1..=1000"
            )));
        }
        let limits = ClientLimits {
            refusals,
            trusted_proxies: raw.trusted_proxies.take().unwrap_or_default().0,
            request_timeout: secs(
                conn.request_timeout_secs,
                cd.request_timeout,
                "request_timeout_secs",
            )?,
            audit_max_bytes,
            audit_keep,
        };
        Ok((limits, serve))
    }

    /// Checks what depends on the issuer: the session length, and the role and STS endpoint
    /// only `sts` uses.
    fn validate_issuer(
        issuer: &IssuerKind,
        duration_secs: u32,
        role_arn: Option<&str>,
        sts_endpoint: Option<&str>,
    ) -> Result<(), ConfigError> {
        match issuer {
            IssuerKind::Sts => {
                if !(STS_MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&duration_secs) {
                    return Err(ConfigError::Invalid(format!(
                        "duration_secs {duration_secs} is not allowed with issuer = \"sts\": it must be \
                     {MAX_DURATION_SECS} (STS's shortest session and Voxseal's longest, so that a \
                     revoked contractor's last session ends within 15 minutes)"
                    )));
                }
                let arn = role_arn.ok_or_else(|| {
                    ConfigError::Invalid("`role_arn` is required with issuer = \"sts\"".into())
                })?;
                if !issuer::is_role_arn(arn) {
                    return Err(ConfigError::Invalid(format!(
                        "role_arn {arn:?} is not an IAM role ARN"
                    )));
                }
                if let Some(url) = sts_endpoint
                    && !(url.starts_with("http://") || url.starts_with("https://"))
                {
                    return Err(ConfigError::Invalid(format!(
                        "sts_endpoint {url:?} is not an http(s) URL"
                    )));
                }
            }
            IssuerKind::Local => {
                if !(1..=MAX_DURATION_SECS).contains(&duration_secs) {
                    return Err(ConfigError::Invalid(format!(
                        "duration_secs {duration_secs} is outside 1..={MAX_DURATION_SECS}"
                    )));
                }
                if sts_endpoint.is_some() {
                    return Err(ConfigError::Invalid(
                        "sts_endpoint only applies to issuer = \"sts\"".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The rate limit, defaults filled in.
    fn validate_rate(rate: RawRate) -> Result<RateLimit, ConfigError> {
        let defaults = RateLimit::default();
        let rate_limit = RateLimit {
            burst: rate.burst.unwrap_or(defaults.burst),
            refill_secs: rate.refill_secs.unwrap_or(defaults.refill_secs),
        };
        if !rate_limit.is_valid() {
            return Err(ConfigError::Invalid(format!(
                "rate_limit burst {} / refill_secs {} is not usable (burst >= 1, 0 < refill_secs <= 86400)",
                rate_limit.burst, rate_limit.refill_secs
            )));
        }
        Ok(rate_limit)
    }

    fn validate(raw: RawConfig, rate: RawRate) -> Result<Config, ConfigError> {
        let need = |v: Option<String>, key: &str| {
            v.filter(|s| !s.is_empty()).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "`{}` is required (or {ENV_PREFIX}{})",
                    key,
                    key.to_uppercase()
                ))
            })
        };
        let bind_text = raw.bind.unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind: SocketAddr = bind_text.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "bind {bind_text:?} is not an address like 127.0.0.1:8787"
            ))
        })?;
        let registry = raw
            .registry
            .ok_or_else(|| ConfigError::Invalid("`registry` is required".into()))?;
        let audit_log = raw
            .audit_log
            .ok_or_else(|| ConfigError::Invalid("`audit_log` is required".into()))?;
        let bucket = need(raw.bucket, "bucket")?;
        let region = need(raw.region, "region")?;
        let kms_key_arn = need(raw.kms_key_arn, "kms_key_arn")?;
        let target = Target::new(&bucket, &region, &kms_key_arn)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let issuer = raw.issuer.unwrap_or_default();
        let duration_secs = raw.duration_secs.unwrap_or(DEFAULT_DURATION_SECS);
        let role_arn = raw.role_arn.filter(|s| !s.is_empty());
        let sts_endpoint = raw.sts_endpoint.filter(|s| !s.is_empty());
        Self::validate_issuer(
            &issuer,
            duration_secs,
            role_arn.as_deref(),
            sts_endpoint.as_deref(),
        )?;
        let rate_limit = Self::validate_rate(rate)?;
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(64..=1 << 20).contains(&max_body_bytes) {
            return Err(ConfigError::Invalid(format!(
                "max_body_bytes {max_body_bytes} is outside 64..=1048576"
            )));
        }
        Ok(Config {
            bind,
            registry,
            audit_log,
            target,
            issuer,
            role_arn,
            duration_secs,
            rate_limit,
            max_body_bytes,
            sts_endpoint,
            project: raw.project,
            client_limits: ClientLimits::default(),
            serve_limits: ServeLimits::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("broker.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// An absolute path on this platform ("/var/log/a.log" has no drive, so Windows joins it to
    /// the config's drive).
    const ABSOLUTE_LOG: &str = if cfg!(windows) {
        "C:/logs/a.log"
    } else {
        "/var/log/a.log"
    };

    fn base() -> String {
        format!(
            "registry = \"reg.toml\"\naudit_log = \"{ABSOLUTE_LOG}\"\nbucket = \"voxseal-prod\"\nregion = \"eu-west-1\"\n\
             kms_key_arn = \"{KEY}\"\nrole_arn = \"arn:aws:iam::123456789012:role/voxseal-contractor\"\n"
        )
    }

    #[test]
    fn defaults_and_relative_paths() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), &base());
        let c = Config::from_sources(Some(&p), &|_| None).unwrap();
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.registry, d.path().join("reg.toml"));
        assert_eq!(c.audit_log, PathBuf::from(ABSOLUTE_LOG));
        assert_eq!(c.issuer, IssuerKind::Sts);
        assert_eq!(c.duration_secs, 900);
        assert_eq!(
            c.rate_limit,
            RateLimit {
                burst: 10,
                refill_secs: 6.0
            }
        );
        assert_eq!(c.max_body_bytes, 4096);
        assert_eq!(c.target.bucket(), "voxseal-prod");
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap()
            .lines()
            .map(|l| {
                l.strip_prefix("//! ")
                    .unwrap_or(l.strip_prefix("//!").unwrap_or(l))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), &example);
        let c = Config::from_sources(Some(&p), &|_| None).unwrap();
        assert_eq!(c.rate_limit.refill_secs, 6.0);
        // The example states the defaults.
        assert_eq!(c.client_limits, ClientLimits::default());
        assert_eq!(c.serve_limits, ServeLimits::default());
    }

    #[test]
    fn environment_overrides_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), &format!("{}[rate_limit]\nburst = 3\n", base()));
        let env: HashMap<&str, &str> = [
            ("VOXSEAL_BROKER_BIND", "127.0.0.1:0"),
            ("VOXSEAL_BROKER_ISSUER", "local"),
            ("VOXSEAL_BROKER_DURATION_SECS", "5"),
            ("VOXSEAL_BROKER_RATE_REFILL_SECS", "0.5"),
            ("VOXSEAL_BROKER_REGISTRY", "/srv/r.toml"),
            ("VOXSEAL_BROKER_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            ("VOXSEAL_BROKER_HEADER_TIMEOUT_SECS", "3"),
        ]
        .into();
        let c = Config::from_sources(Some(&p), &|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.bind.port(), 0);
        assert_eq!(c.issuer, IssuerKind::Local);
        assert_eq!(c.duration_secs, 5);
        assert_eq!(
            c.rate_limit,
            RateLimit {
                burst: 3,
                refill_secs: 0.5
            }
        );
        assert_eq!(c.registry, PathBuf::from("/srv/r.toml"));
        assert_eq!(
            c.client_limits.trusted_proxies,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(c.serve_limits.header_timeout, Duration::from_secs(3));

        let bad: HashMap<&str, &str> = [("VOXSEAL_BROKER_DURATION_SECS", "soon")].into();
        let e = Config::from_sources(Some(&p), &|k| bad.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(
            e.to_string().contains("VOXSEAL_BROKER_DURATION_SECS"),
            "{e}"
        );
    }

    #[test]
    fn refusals() {
        let d = tempfile::tempdir().unwrap();
        for (extra, want) in [
            ("duration_secs = 60\n", "must be 900"),
            ("duration_secs = 901\n", "must be 900"),
            ("duration_secs = 3600\n", "must be 900"),
            (
                "issuer = \"local\"\nduration_secs = 901\n",
                "outside 1..=900",
            ),
            ("trusted_proxies = [\"10.0.0.0/8\"]\n", "trusted_proxies"),
            ("audit_max_bytes = 1000\n", "audit_max_bytes"),
            ("audit_keep = 0\n", "audit_keep"),
            ("[client_limit]\nburst = 0\n", "client_limit"),
            ("[connections]\nper_address = 0\n", "per_address"),
            (
                "[connections]\nheader_timeout_secs = 0\n",
                "header_timeout_secs",
            ),
            ("max_body_bytes = 10\n", "max_body_bytes"),
            ("unknown = 1\n", "unknown field"),
            ("[rate_limit]\nburst = 0\n", "rate_limit"),
            ("sts_endpoint = \"ftp://x\"\n", "sts_endpoint"),
            ("issuer = \"iam\"\n", "unknown variant"),
        ] {
            let p = write(d.path(), &format!("{}{extra}", base()));
            let e = Config::from_sources(Some(&p), &|_| None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let p = write(d.path(), &base().replace("voxseal-prod", "Bad_Bucket"));
        assert!(
            Config::from_sources(Some(&p), &|_| None)
                .unwrap_err()
                .to_string()
                .contains("bucket")
        );
        let p = write(d.path(), &base().replace("role_arn", "# role_arn"));
        assert!(
            Config::from_sources(Some(&p), &|_| None)
                .unwrap_err()
                .to_string()
                .contains("role_arn")
        );
        let p = write(
            d.path(),
            &format!(
                "{}issuer = \"local\"\nduration_secs = 5\n",
                base().replace("role_arn", "# role_arn")
            ),
        );
        assert_eq!(
            Config::from_sources(Some(&p), &|_| None)
                .unwrap()
                .duration_secs,
            5
        );
    }
}
