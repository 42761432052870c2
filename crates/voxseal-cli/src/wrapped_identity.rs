//! Training and archive identities wrapped under KMS (`voxseal.wrapped-identity/1`), for
//! `voxseal project init --wrap-identities`: the identity never rests as a plaintext file.
//!
//! A wrapped identity is a JSON document: a 256-bit data key from KMS `GenerateDataKey` (only its
//! KMS ciphertext kept), and the age identity encrypted under it with ChaCha20-Poly1305. The KMS
//! encryption context names the project and the purpose and is also the AEAD's associated data,
//! so a document relabelled for another purpose fails in KMS and in the AEAD. It is stored in
//! Secrets Manager as `<prefix>/<purpose>`, which the stack's reader roles may read; only a role
//! allowed `kms:Decrypt` with that context can unwrap it, and CloudTrail records each unwrap. The
//! Python package (`voxseal.keys`) reads and writes the same format.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

/// The document format, also bound into the associated data.
pub const FORMAT: &str = "voxseal.wrapped-identity/1";

/// What an identity decrypts: features (training) or raw audio (archive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The training identity (features).
    Training,
    /// The archive identity (raw audio).
    Archive,
}

impl Purpose {
    /// The name used in the encryption context and the secret's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Training => "training",
            Purpose::Archive => "archive",
        }
    }
}

/// The KMS encryption context of `project`'s identity for `purpose`.
pub fn encryption_context(project: &str, purpose: Purpose) -> HashMap<String, String> {
    HashMap::from([
        ("voxseal:project".to_owned(), project.to_owned()),
        ("voxseal:purpose".to_owned(), purpose.as_str().to_owned()),
    ])
}

/// The AEAD's associated data: the format and the encryption context as compact JSON with sorted
/// keys (the bytes Python's `json.dumps(sort_keys=True, separators=(",", ":"))` makes).
pub fn associated_data(project: &str, purpose: Purpose) -> Vec<u8> {
    let fields = BTreeMap::from([
        ("format", FORMAT),
        ("voxseal:project", project),
        ("voxseal:purpose", purpose.as_str()),
    ]);
    serde_json::to_vec(&fields).expect("a map of strings serialises")
}

/// A data key from KMS: its plaintext (used once, zeroized) and what is kept of it.
pub struct DataKey {
    /// The 32-byte key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The key under KMS (`CiphertextBlob`).
    pub wrapped: Vec<u8>,
    /// The KMS key's ARN.
    pub kms_key_id: String,
}

/// The wrapped document of `identity` (`AGE-SECRET-KEY-1...`) under `key`, with a fresh nonce.
pub fn wrap(identity: &str, key: &DataKey, project: &str, purpose: Purpose) -> Result<Vec<u8>> {
    if key.plaintext.len() != 32 {
        bail!(
            "KMS returned a {}-byte data key; expected 32",
            key.plaintext.len()
        );
    }
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut nonce).context("the operating system's random source failed")?;
    let aad = associated_data(project, purpose);
    let sealed = ChaCha20Poly1305::new(Key::from_slice(&key.plaintext))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: identity.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| anyhow::anyhow!("sealing the identity failed"))?;
    let doc = serde_json::json!({
        "format": FORMAT,
        "project": project,
        "purpose": purpose.as_str(),
        "kms_key_id": key.kms_key_id,
        "wrapped_key": B64.encode(&key.wrapped),
        "nonce": B64.encode(nonce),
        "ciphertext": B64.encode(sealed),
    });
    Ok(serde_json::to_vec_pretty(&doc).expect("JSON values serialise"))
}

/// KMS and Secrets Manager with the lead's credentials.
pub struct IdentityVault {
    kms: aws_sdk_kms::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

fn aws_error<E: std::error::Error + 'static>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_kms::error::DisplayErrorContext(e))
}

impl IdentityVault {
    /// Clients for `region` (default: AWS_REGION or the profile's).
    pub async fn connect(region: Option<&str>) -> Result<IdentityVault> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_owned()));
        }
        let shared = loader.load().await;
        shared
            .region()
            .context("no AWS region: pass --region or set AWS_REGION")?;
        Ok(IdentityVault {
            kms: aws_sdk_kms::Client::new(&shared),
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
        })
    }

    /// Fails if a secret `name` exists: a new project never replaces another's identity.
    pub async fn refuse_existing(&self, name: &str) -> Result<()> {
        match self.secrets.describe_secret().secret_id(name).send().await {
            Ok(_) => bail!(
                "the secret {name} already exists: choose another --identity-secret-prefix, or delete that secret if it is yours"
            ),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_error(e)).with_context(|| format!("checking the secret {name}")),
        }
    }

    /// A data key for `project`'s `purpose` under the KMS key `kms_key`.
    async fn data_key(&self, kms_key: &str, project: &str, purpose: Purpose) -> Result<DataKey> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(kms_key)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .set_encryption_context(Some(encryption_context(project, purpose)))
            .send()
            .await
            .map_err(aws_error)
            .with_context(|| format!("kms:GenerateDataKey with the key {kms_key}"))?;
        let (Some(plaintext), Some(wrapped), Some(id)) =
            (out.plaintext, out.ciphertext_blob, out.key_id)
        else {
            bail!("KMS GenerateDataKey answered without a key");
        };
        Ok(DataKey {
            plaintext: Zeroizing::new(plaintext.into_inner()),
            wrapped: wrapped.into_inner(),
            kms_key_id: id,
        })
    }

    /// Wraps `identity` under a new data key of `kms_key` and stores it as the secret `name`
    /// (tagged with the project and purpose). Returns the secret's ARN.
    pub async fn store_wrapped(
        &self,
        kms_key: &str,
        name: &str,
        identity: &str,
        project: &str,
        purpose: Purpose,
    ) -> Result<String> {
        let key = self.data_key(kms_key, project, purpose).await?;
        let document = wrap(identity, &key, project, purpose)?;
        let tag = |k: &str, v: &str| {
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        };
        let out = self
            .secrets
            .create_secret()
            .name(name)
            .description("Voxseal: a KMS-wrapped age identity (voxseal.wrapped-identity/1)")
            .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(document))
            .tags(tag("voxseal:project", project))
            .tags(tag("voxseal:purpose", purpose.as_str()))
            .send()
            .await
            .map_err(aws_error)
            .with_context(|| format!("secretsmanager:CreateSecret {name}"))?;
        Ok(out.arn.unwrap_or_else(|| name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey {
            plaintext: Zeroizing::new(vec![7; 32]),
            wrapped: b"kms-ciphertext".to_vec(),
            kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
        }
    }

    fn open(doc: &serde_json::Value, aad: &[u8]) -> Option<Vec<u8>> {
        let field = |k: &str| B64.decode(doc[k].as_str().unwrap()).unwrap();
        ChaCha20Poly1305::new(Key::from_slice(&[7; 32]))
            .decrypt(
                Nonce::from_slice(&field("nonce")),
                Payload {
                    msg: &field("ciphertext"),
                    aad,
                },
            )
            .ok()
    }

    #[test]
    fn the_associated_data_is_python_s_sorted_compact_json() {
        assert_eq!(
            associated_data("acme-voice", Purpose::Training),
            br#"{"format":"voxseal.wrapped-identity/1","voxseal:project":"acme-voice","voxseal:purpose":"training"}"#
        );
    }

    #[test]
    fn a_wrapped_identity_opens_only_with_its_own_project_and_purpose() {
        let doc: serde_json::Value = serde_json::from_slice(
            &wrap("AGE-SECRET-KEY-1X", &key(), "p1", Purpose::Training).unwrap(),
        )
        .unwrap();
        assert_eq!(doc["format"], FORMAT);
        assert_eq!(doc["purpose"], "training");
        assert_eq!(
            B64.decode(doc["wrapped_key"].as_str().unwrap()).unwrap(),
            b"kms-ciphertext"
        );
        let plain = open(&doc, &associated_data("p1", Purpose::Training));
        assert_eq!(plain.as_deref(), Some(&b"AGE-SECRET-KEY-1X"[..]));
        assert!(open(&doc, &associated_data("p1", Purpose::Archive)).is_none());
        assert!(open(&doc, &associated_data("p2", Purpose::Training)).is_none());
    }

    #[test]
    fn each_wrap_uses_a_fresh_nonce() {
        let a: serde_json::Value =
            serde_json::from_slice(&wrap("X", &key(), "p1", Purpose::Archive).unwrap()).unwrap();
        let b: serde_json::Value =
            serde_json::from_slice(&wrap("X", &key(), "p1", Purpose::Archive).unwrap()).unwrap();
        assert_ne!(a["nonce"], b["nonce"]);
    }

    #[test]
    fn a_data_key_of_the_wrong_size_is_refused() {
        let mut k = key();
        k.plaintext = Zeroizing::new(vec![1; 16]);
        let e = wrap("X", &k, "p1", Purpose::Training).unwrap_err();
        assert!(e.to_string().contains("16-byte"), "{e}");
    }
}
