//! Revocation that bites at once: the bucket-policy statement that denies every request of a
//! revoked contractor's sessions, including sessions issued before the revocation.
//!
//! Every session the broker mints carries `SourceIdentity=<contractor id>` (the upload role's
//! trust policy requires one), which S3 sees as `aws:SourceIdentity` on every request; the bucket
//! policy is evaluated per request. deploy/aws/voxseal.yaml declares the statement
//! ([`STATEMENT_SID`], ids from the `RevokedContractors` parameter); `voxseal enroll revoke --now`
//! adds an id to the live policy with [`deny_contractor`].

use serde_json::{Value, json};
use voxseal_core::project::ids::ContractorId;

/// The statement's `Sid` (the same in the template).
pub const STATEMENT_SID: &str = "DenyRevokedContractors";
/// The template's placeholder for "no one" (not a valid contractor id).
pub const NO_ONE: &str = "-";
const KEY: &str = "aws:SourceIdentity";

/// Why a bucket policy could not be edited.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyEditError {
    /// The current policy is not a JSON object with a `Statement` list.
    #[error("the bucket policy is not a policy document ({0}); fix it before revoking with --now")]
    NotAPolicy(String),
    /// A statement with [`STATEMENT_SID`] exists but is not the shape Voxseal writes.
    #[error(
        "the bucket policy's {STATEMENT_SID} statement is not the shape Voxseal writes ({0}): it must be \
         Effect Deny with Condition StringEquals aws:SourceIdentity; fix or remove it by hand"
    )]
    UnexpectedStatement(&'static str),
}

/// `bucket`'s ARN in `region`'s partition.
fn bucket_arn(bucket: &str, region: &str) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    format!("arn:{partition}:s3:::{bucket}")
}

/// The statement for these ids, as the template writes it.
fn statement(bucket: &str, region: &str, ids: &[String]) -> Value {
    let arn = bucket_arn(bucket, region);
    json!({
        "Sid": STATEMENT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, format!("{arn}/*")],
        "Condition": {"StringEquals": {KEY: ids}},
    })
}

/// The ids a statement denies, without the placeholder.
fn denied_ids(stmt: &Value) -> Result<Vec<String>, PolicyEditError> {
    if stmt["Effect"] != "Deny" {
        return Err(PolicyEditError::UnexpectedStatement(
            "its Effect is not Deny",
        ));
    }
    let ids = &stmt["Condition"]["StringEquals"][KEY];
    let list: Vec<&Value> = match ids {
        Value::String(_) => vec![ids],
        Value::Array(a) => a.iter().collect(),
        _ => {
            return Err(PolicyEditError::UnexpectedStatement(
                "no StringEquals aws:SourceIdentity condition",
            ));
        }
    };
    list.into_iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or(PolicyEditError::UnexpectedStatement(
                    "aws:SourceIdentity holds something other than strings",
                ))
        })
        .filter(|r| r.as_ref().map_or(true, |s| s != NO_ONE))
        .collect()
}

/// `policy` (the bucket's current policy, `None` when it has none) with `contractor` added to
/// the [`STATEMENT_SID`] statement, which is created if missing; every other statement is kept
/// as it is. Returns the new policy (compact JSON) and the full list of denied ids, or `None`
/// when the contractor was already denied (nothing to write).
pub fn deny_contractor(
    policy: Option<&str>,
    bucket: &str,
    region: &str,
    contractor: &ContractorId,
) -> Result<Option<(String, Vec<String>)>, PolicyEditError> {
    let mut doc: Value = match policy {
        None => json!({"Version": "2012-10-17", "Statement": []}),
        Some(text) => {
            serde_json::from_str(text).map_err(|e| PolicyEditError::NotAPolicy(e.to_string()))?
        }
    };
    let statements = match doc.get_mut("Statement") {
        Some(Value::Array(a)) => a,
        Some(single @ Value::Object(_)) => {
            *single = Value::Array(vec![single.take()]);
            single.as_array_mut().expect("just made an array")
        }
        _ => return Err(PolicyEditError::NotAPolicy("no Statement list".into())),
    };
    let id = contractor.as_str().to_owned();
    let ids = match statements.iter_mut().find(|s| s["Sid"] == STATEMENT_SID) {
        Some(stmt) => {
            let mut ids = denied_ids(stmt)?;
            if ids.contains(&id) {
                return Ok(None);
            }
            ids.push(id);
            ids.sort();
            stmt["Condition"]["StringEquals"][KEY] = json!(ids);
            ids
        }
        None => {
            let ids = vec![id];
            statements.push(statement(bucket, region, &ids));
            ids
        }
    };
    Ok(Some((doc.to_string(), ids)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(s: &str) -> ContractorId {
        s.parse().unwrap()
    }

    /// The template's statement after `aws cloudformation deploy` with the default parameter.
    fn template_policy() -> String {
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": "arn:aws:s3:::b/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
                {"Sid": STATEMENT_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                 "Condition": {"StringEquals": {KEY: NO_ONE}}},
            ],
        })
        .to_string()
    }

    #[test]
    fn adds_to_the_template_statement_once_and_keeps_the_rest() {
        let (policy, ids) =
            deny_contractor(Some(&template_policy()), "b", "eu-west-1", &cid("bob-02"))
                .unwrap()
                .unwrap();
        assert_eq!(ids, ["bob-02"], "the placeholder is dropped");
        let (policy, ids) = deny_contractor(Some(&policy), "b", "eu-west-1", &cid("alice-01"))
            .unwrap()
            .unwrap();
        assert_eq!(ids, ["alice-01", "bob-02"]);
        assert!(
            deny_contractor(Some(&policy), "b", "eu-west-1", &cid("alice-01"))
                .unwrap()
                .is_none(),
            "idempotent"
        );
        let doc: Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(doc["Statement"][0]["Sid"], "DenyInsecureTransport");
        assert_eq!(
            doc["Statement"][1]["Condition"]["StringEquals"][KEY],
            json!(["alice-01", "bob-02"])
        );
        assert!(!policy.contains(' '));
    }

    #[test]
    fn creates_the_statement_or_the_policy_when_missing() {
        let (policy, _) = deny_contractor(None, "b", "us-gov-west-1", &cid("alice-01"))
            .unwrap()
            .unwrap();
        let doc: Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
        let s = &doc["Statement"][0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Principal"], "*");
        assert_eq!(s["Resource"][1], "arn:aws-us-gov:s3:::b/*");
        assert_eq!(s["Condition"]["StringEquals"][KEY], json!(["alice-01"]));

        let other = json!({"Version": "2012-10-17", "Statement": {"Sid": "X", "Effect": "Allow"}});
        let (policy, _) =
            deny_contractor(Some(&other.to_string()), "b", "us-east-1", &cid("a-b-c"))
                .unwrap()
                .unwrap();
        let doc: Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(doc["Statement"][0]["Sid"], "X");
        assert_eq!(doc["Statement"][1]["Sid"], STATEMENT_SID);
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "not json".to_owned(),
            json!({"Version": "2012-10-17"}).to_string(),
            json!({"Statement": [{"Sid": STATEMENT_SID, "Effect": "Allow"}]}).to_string(),
            json!({"Statement": [{"Sid": STATEMENT_SID, "Effect": "Deny",
                                  "Condition": {"StringLike": {KEY: "x"}}}]})
            .to_string(),
        ] {
            let e = deny_contractor(Some(&bad), "b", "us-east-1", &cid("alice-01")).unwrap_err();
            assert!(e.to_string().contains("fix"), "{e}");
        }
    }
}
