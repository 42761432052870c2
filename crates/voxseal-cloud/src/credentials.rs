//! Short-lived upload credentials: what the broker returns and what the uploader uses.
//!
//! The JSON shape is the one AWS tools use for `credential_process` (`Version`, `AccessKeyId`,
//! `SecretAccessKey`, `SessionToken`, `Expiration`) plus where to write: bucket, region, prefixes
//! and the KMS key. Secrets are [`SecretString`]s: never printed (`Debug` redacts them) and zeroized
//! on drop.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;

/// Credentials for one contractor session.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SessionCredentials {
    /// Always 1.
    pub version: u8,
    /// The access key id (not secret, but not logged either).
    pub access_key_id: String,
    /// The secret access key.
    #[serde(serialize_with = "expose")]
    pub secret_access_key: SecretString,
    /// The session token.
    #[serde(serialize_with = "expose")]
    pub session_token: SecretString,
    /// When they stop working.
    #[serde(with = "time::serde::rfc3339")]
    pub expiration: OffsetDateTime,
    /// The bucket they can write to.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// The prefixes they can write under.
    pub prefixes: Vec<String>,
    /// The KMS key uploads must use.
    pub kms_key_arn: String,
}

fn expose<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("bucket", &self.bucket)
            .field("prefixes", &self.prefixes)
            .finish_non_exhaustive()
    }
}

impl SessionCredentials {
    /// Seconds of validity left (negative when expired).
    pub fn remaining(&self, now: OffsetDateTime) -> time::Duration {
        self.expiration - now
    }

    /// The AWS SDK form, with the expiry the SDK's identity cache uses to refresh in time.
    pub fn to_aws(&self, refresh_at: OffsetDateTime) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            Some(self.session_token.expose_secret().to_owned()),
            Some(refresh_at.into()),
            "voxseal",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_debug_hides_secrets() {
        let c = SessionCredentials {
            version: 1,
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: SecretString::from("s3cr3t-value"),
            session_token: SecretString::from("t0ken-value"),
            expiration: OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            prefixes: vec!["raw/a/".into()],
            kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains("\"SecretAccessKey\":\"s3cr3t-value\"")
                && json.contains("\"Expiration\":\"2033-05-18T03:33:20Z\"")
        );
        let back: SessionCredentials = serde_json::from_str(&json).unwrap();
        assert_eq!(back.session_token.expose_secret(), "t0ken-value");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("t0ken"), "{dbg}");
    }
}
