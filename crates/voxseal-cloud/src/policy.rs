//! The inline session policy that scopes a contractor's credentials.
//!
//! One function builds it; the broker (STS `AssumeRole`) and direct mode both use it. The
//! effective permission of the session is the intersection of the role's policy and this one.
//!
//! What it allows, and nothing else:
//! - `s3:PutObject`, `s3:AbortMultipartUpload` and `s3:ListMultipartUploadParts` on
//!   `raw/<id>/*`, `features/<id>/*` and `manifests/<id>/*` of the project bucket, with
//!   `StringEqualsIfExists` on `s3:x-amz-server-side-encryption = aws:kms` and
//!   `s3:x-amz-server-side-encryption-aws-kms-key-id = <project key>`. PutObject and
//!   CreateMultipartUpload carry those headers, so asking for another key or for SSE-S3 is denied;
//!   UploadPart, CompleteMultipartUpload, AbortMultipartUpload and ListParts carry none (parts
//!   inherit the upload's encryption), and the `IfExists` form is what keeps them working. A
//!   request that sends no encryption header at all gets the bucket's default encryption, which
//!   the project's template sets to SSE-KMS under the same key (deploy/); the Voxseal client
//!   always sends the headers.
//! - `kms:GenerateDataKey` and `kms:Decrypt` on the project key only, and only via S3
//!   (`kms:ViaService = s3.<region>.amazonaws.com`): what SSE-KMS uploads need (completing a
//!   multipart upload calls Decrypt).
//!
//! - A Deny of `s3:PutObject` on keys with a `.`, `..` or empty segment inside the prefixes
//!   (any segment starting with `.`, and `//` or a trailing `/`: [`DOT_OR_EMPTY_SEGMENT_PATTERNS`];
//!   Voxseal's own segments never start with a dot). S3 keys are plain strings, so
//!   `raw/<id>/../<other>/x` is inside `raw/<id>/*`, but a reader that maps keys to paths would
//!   put it under another contractor. The project's bucket policy denies the same for everyone.
//!
//! No reads, no lists, no deletes, no other bucket, prefix or key.

use serde_json::json;
use voxseal_core::project::ids::ContractorId;

/// STS's limit on an inline session policy, in characters (after removing whitespace).
pub const MAX_POLICY_LEN: usize = 2048;

/// The three object prefixes a contractor may write: `raw/<id>/`, `features/<id>/`,
/// `manifests/<id>/`.
pub fn contractor_prefixes(contractor: &ContractorId) -> [String; 3] {
    ["raw", "features", "manifests"].map(|kind| format!("{kind}/{}/", contractor.as_str()))
}

/// IAM resource patterns (after `<bucket>/`) of object keys inside a contractor's prefixes that
/// have a `..`, `.` or empty segment (`*` matches any characters, `/` included): a segment that
/// starts with a dot (which covers `.` and `..`; no key Voxseal writes has one), `//`, or a
/// trailing `/`. Keys under the prefixes start with `<kind>/<id>/`, so a bad segment can only be
/// in the middle or at the end. Three patterns: the session policy must stay under STS's limit.
pub const DOT_OR_EMPTY_SEGMENT_PATTERNS: [&str; 3] = ["*/.*", "*//*", "*/"];

/// Inputs for [`session_policy`].
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    /// The project bucket (validated by the caller's config).
    pub bucket: &'a str,
    /// The project KMS key ARN.
    pub kms_key_arn: &'a str,
    /// The AWS region (for `kms:ViaService`).
    pub region: &'a str,
    /// The contractor; its id is already validated by the type.
    pub contractor: &'a ContractorId,
}

/// Why a policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The bucket name is not a valid S3 bucket name.
    #[error("invalid bucket name {0}")]
    Bucket(String),
    /// The KMS key is not a KMS key ARN.
    #[error("invalid KMS key ARN {0}: expected arn:aws:kms:<region>:<account>:key/<id>")]
    KmsKey(String),
    /// The region is not a region name.
    #[error("invalid region {0}")]
    Region(String),
    /// The policy is longer than STS accepts.
    #[error("session policy is {0} characters; STS accepts at most {MAX_POLICY_LEN}")]
    TooLong(usize),
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
}

fn valid_region(r: &str) -> bool {
    (4..=32).contains(&r.len())
        && r.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

fn valid_kms_arn(a: &str) -> bool {
    let parts: Vec<&str> = a.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "kms"
        && valid_region(parts[3])
        && parts[4].len() == 12
        && parts[4].bytes().all(|c| c.is_ascii_digit())
        && parts[5].strip_prefix("key/").is_some_and(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// Checks the bucket, key ARN and region that go into policies and ARNs.
pub fn validate(bucket: &str, kms_key_arn: &str, region: &str) -> Result<(), PolicyError> {
    let shown = |s: &str| format!("{s:?}").chars().take(80).collect::<String>();
    if !valid_bucket(bucket) {
        return Err(PolicyError::Bucket(shown(bucket)));
    }
    if !valid_region(region) {
        return Err(PolicyError::Region(shown(region)));
    }
    if !valid_kms_arn(kms_key_arn) {
        return Err(PolicyError::KmsKey(shown(kms_key_arn)));
    }
    Ok(())
}

/// Builds the compact JSON session policy for `input.contractor` (see the module docs).
pub fn session_policy(input: &PolicyInput<'_>) -> Result<String, PolicyError> {
    validate(input.bucket, input.kms_key_arn, input.region)?;
    // S3 ARNs live in the key's partition (aws, aws-us-gov, aws-cn).
    let partition = input.kms_key_arn.split(':').nth(1).unwrap_or("aws");
    let objects: Vec<String> = contractor_prefixes(input.contractor)
        .iter()
        .map(|p| format!("arn:{partition}:s3:::{}/{p}*", input.bucket))
        .collect();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnPrefixesWithProjectKey",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": objects,
                "Condition": {
                    "StringEqualsIfExists": {
                        "s3:x-amz-server-side-encryption": "aws:kms",
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": input.kms_key_arn,
                    }
                },
            },
            {
                // `aws:kms` without a key id would make S3 use the AWS-managed aws/s3 key.
                "Sid": "NoDefaultKmsKey",
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": format!("arn:{partition}:s3:::{}/*", input.bucket),
                "Condition": {
                    "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                },
            },
            {
                "Sid": "ProjectKeyViaS3",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": input.kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{}.amazonaws.com", input.region)}},
            },
            {
                "Sid": "NoDotOrEmptyKeySegments",
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": DOT_OR_EMPTY_SEGMENT_PATTERNS
                    .map(|p| format!("arn:{partition}:s3:::{}/{p}", input.bucket)),
            },
        ],
    });
    let text = serde_json::to_string(&policy).expect("policies always serialize");
    if text.len() > MAX_POLICY_LEN {
        return Err(PolicyError::TooLong(text.len()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn policy(id: &str) -> serde_json::Value {
        let c: ContractorId = id.parse().unwrap();
        let text = session_policy(&PolicyInput {
            bucket: "voxseal-prod",
            kms_key_arn: KEY,
            region: "eu-west-1",
            contractor: &c,
        })
        .unwrap();
        assert!(
            !text.contains(' ') && !text.contains('\n'),
            "compact JSON (moto's SigV4 needs it)"
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn exact_policy_for_a_contractor() {
        let c: ContractorId = "alice-01".parse().unwrap();
        let text = session_policy(&PolicyInput {
            bucket: "voxseal-prod",
            kms_key_arn: KEY,
            region: "eu-west-1",
            contractor: &c,
        })
        .unwrap();
        let want = concat!(
            r#"{"Statement":[{"Action":["s3:PutObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],"#,
            r#""Condition":{"StringEqualsIfExists":{"s3:x-amz-server-side-encryption":"aws:kms","#,
            r#""s3:x-amz-server-side-encryption-aws-kms-key-id":"#,
            r#""arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},"Effect":"Allow","#,
            r#""Resource":["arn:aws:s3:::voxseal-prod/raw/alice-01/*","arn:aws:s3:::voxseal-prod/features/alice-01/*","#,
            r#""arn:aws:s3:::voxseal-prod/manifests/alice-01/*"],"Sid":"WriteOwnPrefixesWithProjectKey"},"#,
            r#"{"Action":"s3:PutObject","Condition":{"Null":{"s3:x-amz-server-side-encryption-aws-kms-key-id":"true"},"#,
            r#""StringEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}},"Effect":"Deny","#,
            r#""Resource":"arn:aws:s3:::voxseal-prod/*","Sid":"NoDefaultKmsKey"},"#,
            r#"{"Action":["kms:GenerateDataKey","kms:Decrypt"],"#,
            r#""Condition":{"StringEquals":{"kms:ViaService":"s3.eu-west-1.amazonaws.com"}},"#,
            r#""Effect":"Allow","Resource":"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab","#,
            r#""Sid":"ProjectKeyViaS3"},"#,
            r#"{"Action":"s3:PutObject","Effect":"Deny","Resource":["arn:aws:s3:::voxseal-prod/*/.*","#,
            r#""arn:aws:s3:::voxseal-prod/*//*","arn:aws:s3:::voxseal-prod/*/"],"Sid":"NoDotOrEmptyKeySegments"}],"#,
            r#""Version":"2012-10-17"}"#
        );
        assert_eq!(text, want);
    }

    #[test]
    fn allows_only_writes_to_own_prefixes() {
        let p = policy("bob-7");
        let mut actions = Vec::new();
        for s in p["Statement"].as_array().unwrap() {
            if s["Effect"] == "Allow" {
                match &s["Action"] {
                    serde_json::Value::String(a) => actions.push(a.clone()),
                    serde_json::Value::Array(a) => {
                        actions.extend(a.iter().map(|x| x.as_str().unwrap().to_owned()))
                    }
                    _ => unreachable!(),
                }
            }
            for r in s["Resource"]
                .as_array()
                .map(|a| a.to_vec())
                .unwrap_or_else(|| vec![s["Resource"].clone()])
            {
                let r = r.as_str().unwrap();
                let allow = s["Effect"] == "Allow";
                assert!(!r.contains('?'), "{r}");
                assert!(!r.ends_with(":::voxseal-prod"), "{r}");
                if allow {
                    assert!(!r.ends_with(":::voxseal-prod/*"), "{r}");
                }
                if r.starts_with("arn:aws:s3") && s["Effect"] == "Allow" {
                    assert!(r.contains("/bob-7/"), "{r}");
                }
            }
        }
        for a in &actions {
            assert!(!a.contains('*'), "no wildcard actions: {a}");
            assert!(
                ![
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:DeleteObject",
                    "kms:Encrypt"
                ]
                .contains(&a.as_str())
            );
        }
        assert_eq!(actions.len(), 5);
        let deny = &p["Statement"][1];
        assert_eq!(deny["Effect"], "Deny", "aws:kms without a key id is denied");
    }

    /// IAM's wildcard rule (`*` any run of characters, `/` included), applied to the deny
    /// patterns: every key with a `.`, `..` or empty segment under a prefix is caught, and no
    /// key Voxseal writes is.
    #[test]
    fn dot_and_empty_segments_are_denied_and_real_keys_are_not() {
        fn iam_match(pattern: &str, s: &str) -> bool {
            match pattern.split_once('*') {
                None => pattern == s,
                Some((head, tail)) => {
                    s.starts_with(head)
                        && (head.len()..=s.len())
                            .any(|i| s.is_char_boundary(i) && iam_match(tail, &s[i..]))
                }
            }
        }
        let denied = |key: &str| {
            DOT_OR_EMPTY_SEGMENT_PATTERNS
                .iter()
                .any(|p| iam_match(p, key))
        };
        for key in [
            "raw/alice-01/../bob-02/2026/01/01/x.wav.age",
            "raw/alice-01/..",
            "raw/alice-01/./x",
            "raw/alice-01/.",
            "raw/alice-01//x",
            "raw/alice-01/x//y",
            "raw/alice-01/x/",
            "manifests/alice-01/2026/../../../bob-02/x.json",
            "raw/alice-01/.hidden",
        ] {
            assert!(denied(key), "{key}");
        }
        for key in [
            "raw/alice-01/2026/01/01/0190a1b2-abcd.wav.age",
            "features/alice-01/2026/01/01/s-0123abcd.safetensors.age",
            "manifests/alice-01/2026/01/01/s.json",
            "raw/alice-01/x..y",
            "raw/alice-01/x.",
        ] {
            assert!(!denied(key), "{key}");
        }
    }

    #[test]
    fn fits_sts_limit_for_the_longest_ids() {
        let longest = "a".repeat(ContractorId::MAX_LEN);
        let bucket = "b".repeat(63);
        let key = format!(
            "arn:aws-us-gov:kms:ap-southeast-3:123456789012:key/mrk-{}",
            "f".repeat(32)
        );
        let c: ContractorId = longest.parse().unwrap();
        let text = session_policy(&PolicyInput {
            bucket: &bucket,
            kms_key_arn: &key,
            region: "ap-southeast-3",
            contractor: &c,
        })
        .unwrap();
        assert!(text.len() <= MAX_POLICY_LEN, "{} characters", text.len());
        assert!(
            text.contains("arn:aws-us-gov:s3:::"),
            "S3 ARNs follow the key's partition"
        );
        println!(
            "longest session policy: {} of {MAX_POLICY_LEN} characters",
            text.len()
        );
    }

    #[test]
    fn refuses_bad_inputs_before_they_reach_an_arn() {
        let c: ContractorId = "alice-01".parse().unwrap();
        for (bucket, key, region) in [
            ("Bad_Bucket", KEY, "eu-west-1"),
            ("b*", KEY, "eu-west-1"),
            ("voxseal", "arn:aws:kms:eu-west-1:123:key/x", "eu-west-1"),
            (
                "voxseal",
                "arn:aws:kms:eu-west-1:123456789012:key/*",
                "eu-west-1",
            ),
            ("voxseal", KEY, "eu west 1"),
        ] {
            assert!(
                session_policy(&PolicyInput {
                    bucket,
                    kms_key_arn: key,
                    region,
                    contractor: &c
                })
                .is_err(),
                "{bucket} {key} {region}"
            );
        }
    }
}
