//! `voxseal retention check`: compares the bucket's lifecycle rules with the signed project's
//! `retention_days` (how long raw audio is kept) and reports every difference. Exit 4 when they
//! differ, so a scheduled job can alert on it. The bucket is taken to keep versions, as the
//! template's does: a rule must then delete noncurrent versions, or expired and erased objects
//! stay restorable.

use anyhow::{Context, Result, bail};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::types::{ExpirationStatus, LifecycleRule};

use crate::cli::RetentionCheckArgs;
use crate::ui;

/// What retention needs from one lifecycle rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule's id.
    pub id: String,
    /// Enabled.
    pub enabled: bool,
    /// The key prefix it applies to ("" for the whole bucket).
    pub prefix: String,
    /// Days until current versions expire.
    pub expiration_days: Option<i32>,
    /// Days until noncurrent versions are deleted.
    pub noncurrent_days: Option<i32>,
}

impl Rule {
    fn of(r: &LifecycleRule) -> Rule {
        // Rules may name their prefix in a filter or in the older rule-level Prefix (which
        // CloudFormation's `Prefix` property writes).
        #[allow(deprecated)]
        let legacy = r.prefix();
        let prefix = r
            .filter()
            .and_then(|f| f.prefix().or_else(|| f.and().and_then(|a| a.prefix())))
            .or(legacy)
            .unwrap_or_default();
        Rule {
            id: r.id().unwrap_or("(no id)").to_owned(),
            enabled: r.status() == &ExpirationStatus::Enabled,
            prefix: prefix.to_owned(),
            expiration_days: r.expiration().and_then(|e| e.days()),
            noncurrent_days: r
                .noncurrent_version_expiration()
                .and_then(|n| n.noncurrent_days()),
        }
    }

    /// Applies to every object under raw/ (its prefix is raw/ or shorter).
    fn covers_raw(&self) -> bool {
        self.enabled && "raw/".starts_with(&self.prefix)
    }
}

/// The differences between the rules and the project's `retention_days` (empty: they agree).
pub fn differences(rules: &[Rule], retention_days: u32) -> Vec<String> {
    let mut out = Vec::new();
    let raw: Vec<&Rule> = rules
        .iter()
        .filter(|r| r.covers_raw() && r.expiration_days.is_some())
        .collect();
    match raw.iter().map(|r| r.expiration_days.unwrap_or(0)).min() {
        None => out.push(format!(
            "no enabled lifecycle rule expires raw/: raw audio is kept forever, the signed project says {retention_days} days"
        )),
        Some(days) if days != retention_days as i32 => {
            let ids: Vec<&str> = raw.iter().map(|r| r.id.as_str()).collect();
            out.push(format!(
                "raw/ expires after {days} days (rule {}), the signed project says retention_days = {retention_days}",
                ids.join(", ")
            ));
        }
        Some(_) => {}
    }
    if !rules
        .iter()
        .any(|r| r.enabled && r.prefix.is_empty() && r.noncurrent_days.is_some())
    {
        out.push(
            "no rule deletes noncurrent versions: in a versioned bucket expired and erased objects \
             stay restorable forever (add NoncurrentVersionExpiration for the whole bucket)"
                .to_owned(),
        );
    }
    out
}

/// `voxseal retention check`
pub fn check(a: &RetentionCheckArgs) -> Result<()> {
    let config = crate::project::load_verified(&a.signed.project, a.signed.lead_pub.as_deref())?;
    let storage = config
        .storage
        .context("the project config has no [storage] section: there is no bucket to check")?;
    let days = config.project.retention_days;
    let rules: Vec<Rule> = crate::cloud::runtime()?.block_on(async {
        let aws = crate::lead_aws::connect(Some(&storage.region), storage.endpoint.as_deref()).await?;
        match aws.s3.get_bucket_lifecycle_configuration().bucket(&storage.bucket).send().await {
            Ok(out) => Ok(out.rules().iter().map(Rule::of).collect()),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
            Err(e) => bail!(
                "reading the lifecycle rules of {} failed ({}): your credentials need s3:GetLifecycleConfiguration",
                storage.bucket,
                DisplayErrorContext(&e)
            ),
        }
    })?;
    let found = differences(&rules, days);
    if found.is_empty() {
        println!(
            "{} s3://{}: raw/ expires after {days} days, as the signed project says; noncurrent versions are deleted",
            ui::green("ok:"),
            storage.bucket
        );
        return Ok(());
    }
    for d in &found {
        println!("{} {d}", ui::red("differs:"));
    }
    Err(crate::Exit {
        code: crate::exit::VERIFY,
        message: format!(
            "s3://{}'s lifecycle rules differ from the signed project ({} difference(s)): change the \
             stack's RawExpirationDays (deploy/aws) or re-sign the project with the retention you mean",
            storage.bucket,
            found.len()
        ),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, prefix: &str, days: Option<i32>, noncurrent: Option<i32>) -> Rule {
        Rule {
            id: id.into(),
            enabled: true,
            prefix: prefix.into(),
            expiration_days: days,
            noncurrent_days: noncurrent,
        }
    }

    #[test]
    fn the_templates_rules_agree_with_365_days() {
        let rules = [
            rule("raw-archive-then-expire", "raw/", Some(365), None),
            rule("whole-bucket-hygiene", "", None, Some(30)),
        ];
        assert!(differences(&rules, 365).is_empty());
    }

    #[test]
    fn each_difference_is_named() {
        let rules = [rule("raw-expire", "raw/", Some(400), None)];
        let d = differences(&rules, 365);
        assert!(
            d[0].contains("raw/ expires after 400 days (rule raw-expire)"),
            "{d:?}"
        );
        assert!(d[1].contains("noncurrent"), "{d:?}");
        assert!(differences(&[], 365)[0].contains("kept forever"));
        let mut off = rule("raw-expire", "raw/", Some(365), None);
        off.enabled = false;
        assert!(differences(&[off], 365)[0].contains("kept forever"));
        // A rule for features/ says nothing about raw/.
        assert!(
            differences(&[rule("f", "features/", Some(365), None)], 365)[0]
                .contains("kept forever")
        );
        // A whole-bucket expiry covers raw/ too.
        assert!(differences(&[rule("all", "", Some(365), Some(1))], 365).is_empty());
    }
}
