//! The project lead's own AWS clients (their profile, SSO or environment), for the commands that
//! administer the bucket: `enroll revoke --now`, `erase`, `retention check`.

use anyhow::{Context, Result};

/// S3 and STS clients with the lead's credentials.
pub struct LeadAws {
    /// S3, path-style when an endpoint is set (a local stand-in or an S3-compatible store).
    pub s3: aws_sdk_s3::Client,
    /// STS, to name the caller in audit events.
    pub sts: aws_sdk_sts::Client,
    /// The region in use.
    pub region: String,
}

/// Clients for `region` (default: AWS_REGION or the profile's). `endpoint` (a project's S3
/// endpoint) overrides AWS_ENDPOINT_URL for S3.
pub async fn connect(region: Option<&str>, endpoint: Option<&str>) -> Result<LeadAws> {
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
    if let Some(url) = endpoint {
        conf = conf.endpoint_url(url);
    }
    if endpoint.is_some() || shared.endpoint_url().is_some() {
        conf = conf.force_path_style(true);
    }
    Ok(LeadAws {
        s3: aws_sdk_s3::Client::from_conf(conf.build()),
        sts: aws_sdk_sts::Client::new(&shared),
        region,
    })
}

impl LeadAws {
    /// The caller's ARN (STS GetCallerIdentity), for audit events.
    pub async fn caller(&self) -> Result<String> {
        let me = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sts::error::DisplayErrorContext(&e)))
            .context("who is asking (sts:GetCallerIdentity)")?;
        Ok(me.arn().unwrap_or("unknown").to_owned())
    }
}
