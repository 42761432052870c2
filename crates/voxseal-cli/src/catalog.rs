//! `voxseal catalog`: one row per sample from the manifests in the bucket alone (no key, nothing
//! decrypted), written as Parquet ([`crate::catalog_file`]) for selecting with SQL or pandas
//! before anything is read. A manifest that fails its checks is left out and named.

use anyhow::{Context, Result};
use aws_sdk_s3::error::DisplayErrorContext;
use futures_util::StreamExt;
use voxseal_cloud::object_key::{ObjectKind, object_key};
use voxseal_core::project::ids::ContractorId;
use voxseal_core::project::manifest::{Manifest, PayloadKind};

use crate::catalog_file::{self, Row, Value};
use crate::cli::CatalogArgs;
use crate::lead_aws::LeadAws;
use crate::ui;

/// Manifest GETs at once: S3 answers each in tens of milliseconds, and rows keep listing order.
const GETS_IN_FLIGHT: usize = 16;

/// Larger than any manifest Voxseal writes (the Python reader's limit too).
const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// `voxseal catalog`
pub fn catalog(a: &CatalogArgs) -> Result<()> {
    let config = crate::project::load_verified(&a.signed.project, a.signed.lead_pub.as_deref())?;
    let storage = config
        .storage
        .context("the project config has no [storage] section: there is no bucket to list")?;
    let contractors = (a.contractor.iter())
        .map(|c| c.parse::<ContractorId>())
        .collect::<Result<Vec<_>, _>>()?;
    let project = config.project.name.clone();
    crate::cloud::runtime()?.block_on(async {
        let aws =
            crate::lead_aws::connect(Some(&storage.region), storage.endpoint.as_deref()).await?;
        let keys = manifest_keys(&aws, &storage.bucket, &contractors).await?;
        ui::step(&format!(
            "{} manifest(s) in s3://{}",
            keys.len(),
            storage.bucket
        ));
        let (mut rows, mut skipped) = (Vec::new(), Vec::new());
        let bucket = storage.bucket.as_str();
        let mut bodies = futures_util::stream::iter(keys)
            .map(|key| {
                let aws = &aws;
                async move { get(aws, bucket, &key).await.map(|body| (key, body)) }
            })
            .buffered(GETS_IN_FLIGHT);
        while let Some(fetched) = bodies.next().await {
            let (key, body) = fetched?;
            match row_of(&body, &key, &project) {
                Ok(row) => rows.push(row),
                Err(why) => skipped.push((key, why)),
            }
        }
        catalog_file::write(&a.out, &rows)?;
        for (key, why) in &skipped {
            eprintln!("{} left out {key}: {why}", ui::yellow("warning:"));
        }
        ui::step(&format!(
            "{}: {} sample(s){}",
            a.out.display(),
            rows.len(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(", {} manifest(s) left out", skipped.len())
            }
        ));
        Ok(())
    })
}

/// The keys of the sample manifests (not audit checkpoints) under `manifests/`, or under the
/// given contractors' prefixes, in listing order.
async fn manifest_keys(
    aws: &LeadAws,
    bucket: &str,
    contractors: &[ContractorId],
) -> Result<Vec<String>> {
    let prefixes: Vec<String> = if contractors.is_empty() {
        vec!["manifests/".to_owned()]
    } else {
        (contractors.iter())
            .map(|c| format!("manifests/{}/", c.as_str()))
            .collect()
    };
    let mut keys = Vec::new();
    for prefix in prefixes {
        let mut pages = (aws.s3.list_objects_v2())
            .bucket(bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
                .with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
            keys.extend(
                (page.contents().iter())
                    .filter_map(|o| o.key())
                    .filter(|k| {
                        voxseal_core::store::key_layout::is_bucket_manifest(std::path::Path::new(k))
                    })
                    .map(str::to_owned),
            );
        }
    }
    Ok(keys)
}

async fn get(aws: &LeadAws, bucket: &str, key: &str) -> Result<Vec<u8>> {
    let out = (aws.s3.get_object())
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
        .with_context(|| format!("reading s3://{bucket}/{key}"))?;
    let body = out.body.collect().await.context("reading a manifest")?;
    Ok(body.into_bytes().to_vec())
}

fn opt_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::Str(s.to_owned()))
}

/// The catalogue row of the manifest `body` stored at `key`, or why it is left out: not a
/// manifest, another project's, or stored where its own contents say it does not belong.
pub fn row_of(body: &[u8], key: &str, project: &str) -> Result<Row, String> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(format!("{} bytes is too large for a manifest", body.len()));
    }
    let m = Manifest::from_json(body).map_err(|e| e.to_string())?;
    if m.project != project {
        return Err(format!(
            "a manifest of project {:?}, not {project:?}",
            m.project
        ));
    }
    let home = object_key(&m, ObjectKind::Manifest);
    if home != key {
        return Err(format!("its contents belong at {home}"));
    }
    let payload = |kind: PayloadKind| {
        m.payload(kind).map_or((Value::Null, Value::Null), |p| {
            let size = i64::try_from(p.size).map_or(Value::Null, Value::I64);
            (Value::Str(object_key(&m, ObjectKind::Payload(kind))), size)
        })
    };
    let (features_key, features_size) = payload(PayloadKind::Features);
    let (raw_key, raw_size) = payload(PayloadKind::Raw);
    let rate = m.audio.sample_rate;
    let verdict = serde_json::to_value(m.quality.overall).map_err(|e| e.to_string())?;
    Ok(vec![
        Value::Str(m.sample_id.as_str().to_owned()),
        Value::Str(m.contractor.as_str().to_owned()),
        Value::Str(m.project.clone()),
        opt_str(m.prompt_id.as_ref().map(|p| p.as_str())),
        opt_str(m.supersedes.as_ref().map(|s| s.as_str())),
        Value::Str(m.recorded_at.clone()),
        Value::Str(m.sealed_at.clone()),
        Value::F64(m.audio.duration_s),
        if rate > 0 && m.audio.take_samples > 0 {
            Value::F64(m.audio.take_samples as f64 / f64::from(rate))
        } else {
            Value::Null
        },
        Value::I64(i64::from(rate)),
        opt_str(verdict.as_str()),
        Value::StrList(m.accepted_despite.clone()),
        opt_str(m.consent.as_ref().map(|c| c.text_sha256.as_str())),
        Value::Str(m.config_sha256.clone()),
        Value::Bool(m.features_only),
        Value::Str(key.to_owned()),
        features_key,
        features_size,
        raw_key,
        raw_size,
        Value::Str(m.app_version.clone()),
    ])
}
