//! `voxseal enroll revoke --now`: adds the contractor to the upload bucket's
//! `DenyRevokedContractors` statement (read-modify-write of the bucket policy with the lead's own
//! AWS credentials), so that sessions issued before the revocation stop at once.

use anyhow::{Result, bail};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use voxseal_broker::revocation;
use voxseal_core::project::ids::ContractorId;

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
        let aws = crate::lead_aws::connect(region, None).await?;
        let (s3, region) = (aws.s3, aws.region);
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
