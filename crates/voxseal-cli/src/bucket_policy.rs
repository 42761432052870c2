//! `voxseal enroll revoke --now`: adds the contractor to the upload bucket's
//! `DenyRevokedContractors` statement (read-modify-write of the bucket policy with the lead's own
//! AWS credentials), so that sessions issued before the revocation stop at once.

use anyhow::{Context, Result, bail};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use voxseal_broker::revocation;
use voxseal_core::ids::ContractorId;

/// Denies `contractor` in `bucket`'s policy. Returns every denied id after the change, or
/// `None` when the contractor was already denied (nothing written).
///
/// Not safe against someone else editing the same bucket policy at the same moment (S3 has no
/// conditional write for bucket policies).
pub fn deny_now(
    bucket: &str,
    region: Option<&str>,
    contractor: &ContractorId,
) -> Result<Option<Vec<String>>> {
    crate::cloud::runtime()?.block_on(async {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_owned()));
        }
        let shared = loader.load().await;
        let region = shared
            .region()
            .map(|r| r.as_ref().to_owned())
            .context("no AWS region: pass --region or set AWS_REGION")?;
        let mut conf = aws_sdk_s3::config::Builder::from(&shared);
        if shared.endpoint_url().is_some() {
            // A local stand-in (AWS_ENDPOINT_URL): path-style addressing.
            conf = conf.force_path_style(true);
        }
        let s3 = aws_sdk_s3::Client::from_conf(conf.build());
        let current = match s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => out.policy().map(str::to_owned),
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => None,
            Err(e) => bail!(
                "reading the bucket policy of {bucket} failed ({}); the contractor is revoked in the \
                 registry, but sessions already issued still work: fix the AWS credentials \
                 (s3:GetBucketPolicy and s3:PutBucketPolicy on the bucket) and run this again",
                DisplayErrorContext(&e)
            ),
        };
        let Some((policy, ids)) =
            revocation::deny_contractor(current.as_deref(), bucket, &region, contractor)?
        else {
            return Ok(None);
        };
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "writing the bucket policy of {bucket} failed ({}); the contractor is revoked in \
                     the registry, but sessions already issued still work: run this again",
                    DisplayErrorContext(&e)
                )
            })?;
        Ok(Some(ids))
    })
}
