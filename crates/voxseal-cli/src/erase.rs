//! `voxseal erase`: honours a contractor's withdrawal of consent. Deletes every version of every
//! object under the contractor's `raw/`, `features/` and `manifests/` prefixes (delete markers
//! included, so nothing is left to restore), and records the erasure in the audit bucket: an
//! `erasure.started` event before the first delete and an `erasure.completed` event after, with
//! the lead's ARN, the reason and the counts. Catalogue files given with `--catalog` lose the
//! contractor's rows.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use voxseal_core::project::ids::ContractorId;

use crate::cli::EraseArgs;
use crate::lead_aws::LeadAws;
use crate::ui;

/// The prefixes a contractor's objects live under.
const KINDS: [&str; 3] = ["raw", "features", "manifests"];
/// DeleteObjects takes at most this many keys.
const BATCH: usize = 1000;

/// One version of an object (or a delete marker).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectVersion {
    /// The object key.
    pub key: String,
    /// Its version id (`null` for objects written before versioning).
    pub version_id: String,
    /// A delete marker, not data.
    pub delete_marker: bool,
    /// Bytes (0 for a delete marker).
    pub size: i64,
}

/// `voxseal erase`
pub fn erase(a: &EraseArgs) -> Result<()> {
    let contractor: ContractorId = a.contractor.parse()?;
    let reason = check_reason(&a.reason)?;
    let config = crate::project::load_verified(&a.signed.project, a.signed.lead_pub.as_deref())?;
    let storage = config
        .storage
        .context("the project config has no [storage] section: there is no bucket to erase from")?;
    // Catalogue files are read first: one that cannot be rewritten stops the erasure early.
    let catalogues = catalogue_edits(&a.catalog, &contractor)?;
    let catalogue_rows: usize = catalogues.iter().map(|c| c.removed).sum();
    crate::cloud::runtime()?.block_on(async {
        let aws = crate::lead_aws::connect(Some(&storage.region), storage.endpoint.as_deref()).await?;
        let versions = list_versions(&aws, &storage.bucket, &contractor).await?;
        let (objects, bytes) = totals(&versions);
        ui::step(&format!(
            "{contractor}: {} version(s) of {objects} object(s), {bytes} bytes, in s3://{}",
            versions.len(),
            storage.bucket
        ));
        if a.dry_run {
            for v in &versions {
                let what = if v.delete_marker { "delete marker" } else { "data" };
                println!("{}\t{}\t{what}\t{}", v.key, v.version_id, v.size);
            }
            for c in &catalogues {
                println!("{}\t{} catalogue row(s)", c.path.display(), c.removed);
            }
            ui::step("dry run: nothing deleted");
            return Ok(());
        }
        if versions.is_empty() && catalogue_rows == 0 {
            ui::step("nothing to erase (no event recorded)");
            return Ok(());
        }
        confirm(&contractor, a.yes)?;
        if versions.is_empty() {
            rewrite_catalogues(&catalogues)?;
            ui::step("nothing to erase in the bucket (no event recorded)");
            return Ok(());
        }
        let event = Event {
            project: &config.project.name,
            contractor: &contractor,
            reason,
            by: aws.caller().await?,
            bucket: &storage.bucket,
        };
        let started = event.json("erasure.started", versions.len(), bytes, &[], 0);
        put_event(&aws, &a.audit_bucket, &event, "started", &started).await?;
        let failed = delete_all(&aws, &storage.bucket, &versions).await?;
        rewrite_catalogues(&catalogues)?;
        let remaining = list_versions(&aws, &storage.bucket, &contractor).await?.len();
        let done = event.json("erasure.completed", versions.len(), bytes, &failed, remaining);
        put_event(&aws, &a.audit_bucket, &event, "completed", &done).await?;
        if remaining > 0 || !failed.is_empty() {
            bail!(crate::Exit {
                code: crate::exit::VERIFY,
                message: format!(
                    "{} version(s) could not be deleted and {remaining} remain; the events in \
                     s3://{}/erasures/ say which: fix the cause (permissions, Object Lock) and run \
                     this again",
                    failed.len(),
                    a.audit_bucket
                ),
            });
        }
        ui::step(&format!(
            "{} erased: {} version(s) deleted, none left; the erasure is recorded in s3://{}/erasures/",
            contractor,
            versions.len(),
            a.audit_bucket
        ));
        Ok(())
    })
}

/// A catalogue file and what it holds without the contractor.
struct CatalogueEdit {
    path: std::path::PathBuf,
    kept: Vec<crate::catalog_file::Row>,
    removed: usize,
}

/// Reads each catalogue file and drops the contractor's rows (in memory).
fn catalogue_edits(
    paths: &[std::path::PathBuf],
    contractor: &ContractorId,
) -> Result<Vec<CatalogueEdit>> {
    paths
        .iter()
        .map(|path| {
            let rows = crate::catalog_file::read(path)?;
            let (kept, removed) =
                crate::catalog_file::without_contractor(rows, contractor.as_str());
            Ok(CatalogueEdit {
                path: path.clone(),
                kept,
                removed,
            })
        })
        .collect()
}

/// Writes back the catalogues that held the contractor.
fn rewrite_catalogues(edits: &[CatalogueEdit]) -> Result<()> {
    for e in edits.iter().filter(|e| e.removed > 0) {
        crate::catalog_file::write(&e.path, &e.kept)?;
        ui::step(&format!(
            "{}: {} row(s) removed, {} left",
            e.path.display(),
            e.removed,
            e.kept.len()
        ));
    }
    Ok(())
}

/// The reason as recorded: 3-500 characters, no control characters.
fn check_reason(reason: &str) -> Result<&str> {
    let r = reason.trim();
    if !(3..=500).contains(&r.chars().count()) || r.chars().any(char::is_control) {
        bail!(
            "--reason: say why in 3-500 characters on one line (e.g. \"consent withdrawn, ticket 4411\")"
        );
    }
    Ok(r)
}

/// Distinct objects and their data bytes.
fn totals(versions: &[ObjectVersion]) -> (usize, i64) {
    let mut keys: Vec<&str> = versions.iter().map(|v| v.key.as_str()).collect();
    keys.dedup();
    (keys.len(), versions.iter().map(|v| v.size).sum())
}

/// Asks for the contractor id at the terminal unless `yes`; refuses without a terminal.
fn confirm(contractor: &ContractorId, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "erasing cannot be undone: run with --dry-run to see what goes, then with --yes to confirm"
        );
    }
    eprint!(
        "This deletes every version of {contractor}'s samples for good. Type the contractor id to confirm: "
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != contractor.as_str() {
        bail!("not confirmed: nothing deleted");
    }
    Ok(())
}

/// Every version and delete marker under the contractor's prefixes.
async fn list_versions(
    aws: &LeadAws,
    bucket: &str,
    contractor: &ContractorId,
) -> Result<Vec<ObjectVersion>> {
    let mut out = Vec::new();
    for kind in KINDS {
        let prefix = format!("{kind}/{}/", contractor.as_str());
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = aws
                .s3
                .list_object_versions()
                .bucket(bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
                .with_context(|| format!("listing the versions under s3://{bucket}/{prefix}"))?;
            out.extend(page.versions().iter().map(|v| ObjectVersion {
                key: v.key().unwrap_or_default().to_owned(),
                version_id: v.version_id().unwrap_or("null").to_owned(),
                delete_marker: false,
                size: v.size().unwrap_or(0),
            }));
            out.extend(page.delete_markers().iter().map(|m| ObjectVersion {
                key: m.key().unwrap_or_default().to_owned(),
                version_id: m.version_id().unwrap_or("null").to_owned(),
                delete_marker: true,
                size: 0,
            }));
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Deletes the versions in batches; returns the ones S3 refused, as `key@version: error`.
async fn delete_all(
    aws: &LeadAws,
    bucket: &str,
    versions: &[ObjectVersion],
) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    for batch in versions.chunks(BATCH) {
        let ids = batch
            .iter()
            .map(|v| {
                ObjectIdentifier::builder()
                    .key(&v.key)
                    .version_id(&v.version_id)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()?;
        let out = aws
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
            .context("deleting object versions (s3:DeleteObjectVersion)")?;
        failed.extend(out.errors().iter().map(|e| {
            format!(
                "{}@{}: {}",
                e.key().unwrap_or_default(),
                e.version_id().unwrap_or("null"),
                e.message().or(e.code()).unwrap_or("refused")
            )
        }));
    }
    Ok(failed)
}

/// What every event of one erasure says.
struct Event<'a> {
    project: &'a str,
    contractor: &'a ContractorId,
    reason: &'a str,
    by: String,
    bucket: &'a str,
}

impl Event<'_> {
    fn json(
        &self,
        event: &str,
        versions: usize,
        bytes: i64,
        failed: &[String],
        remaining: usize,
    ) -> Vec<u8> {
        let v = serde_json::json!({
            "schema": "voxseal.erasure/1",
            "event": event,
            "time": voxseal_core::time::now_rfc3339(),
            "project": self.project,
            "contractor": self.contractor.as_str(),
            "reason": self.reason,
            "requested_by": self.by,
            "bucket": self.bucket,
            "prefixes": KINDS.map(|k| format!("{k}/{}/", self.contractor.as_str())),
            "versions": versions,
            "bytes": bytes,
            "failed": failed,
            "remaining": remaining,
        });
        serde_json::to_vec_pretty(&v).expect("JSON values serialize")
    }
}

/// Writes an event to `erasures/<project>/<contractor>/<time>-<stage>.json`, never over another.
async fn put_event(
    aws: &LeadAws,
    audit_bucket: &str,
    e: &Event<'_>,
    stage: &str,
    body: &[u8],
) -> Result<()> {
    let stamp = voxseal_core::time::now_rfc3339().replace([':', '.'], "");
    let key = format!(
        "erasures/{}/{}/{stamp}-{stage}.json",
        e.project,
        e.contractor.as_str()
    );
    aws.s3
        .put_object()
        .bucket(audit_bucket)
        .key(&key)
        .if_none_match("*")
        .content_type("application/json")
        .body(body.to_vec().into())
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("{}", DisplayErrorContext(&err)))
        .with_context(|| {
            format!(
                "recording the erasure in s3://{audit_bucket}/{key}; nothing is deleted without it \
                 (s3:PutObject on the audit bucket's erasures/ prefix)"
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_one_readable_line() {
        assert_eq!(
            check_reason("  consent withdrawn, ticket 4411 ").unwrap(),
            "consent withdrawn, ticket 4411"
        );
        for bad in ["", "no", "line\nbreak", &"x".repeat(501)] {
            assert!(check_reason(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn totals_count_objects_once_and_markers_as_no_bytes() {
        let v = |key: &str, id: &str, marker, size| ObjectVersion {
            key: key.into(),
            version_id: id.into(),
            delete_marker: marker,
            size,
        };
        let versions = [
            v("a", "1", false, 10),
            v("a", "2", true, 0),
            v("b", "1", false, 5),
        ];
        assert_eq!(totals(&versions), (2, 15));
    }
}
