//! Cloud commands: `voxseal enroll join` and `voxseal upload`.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::SecretString;
use voxseal_cloud::provider::{BrokerSource, CachingProvider, CredentialSource, DirectSource};
use voxseal_cloud::token_store::{Backend, TokenStore};
use voxseal_cloud::uploader::{UploadConfig, UploadProgress, Uploader};
use voxseal_core::outbox::ItemStatus;

use crate::cli::{Cli, JoinArgs, UploadArgs};
use crate::ui;

/// A tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The token passphrase: `$VOXSEAL_TOKEN_PASSPHRASE`, else asked at the terminal.
pub fn passphrase(confirm: bool) -> Option<SecretString> {
    if let Ok(p) = std::env::var("VOXSEAL_TOKEN_PASSPHRASE") {
        return Some(SecretString::from(p));
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let p = rpassword::prompt_password("Passphrase for the enrollment token file: ").ok()?;
    if confirm {
        let again = rpassword::prompt_password("Again: ").ok()?;
        if again != p {
            eprintln!("{} the passphrases differ", ui::red("error:"));
            return None;
        }
    }
    Some(SecretString::from(p))
}

/// Splits `voxseal://enroll?broker=<url>&code=<code>` or a bare code.
pub fn parse_enroll_link(input: &str, broker: Option<&str>) -> Result<(String, String)> {
    let input = input.trim();
    if let Some(query) = input.strip_prefix("voxseal://enroll?") {
        let mut code = None;
        let mut url = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("code", v)) => code = Some(percent_decode(v)?),
                Some(("broker", v)) => url = Some(percent_decode(v)?),
                _ => {}
            }
        }
        let code = code.context("the enrollment link has no code")?;
        let url = broker
            .map(str::to_owned)
            .or(url)
            .context("the enrollment link has no broker")?;
        return Ok((url, code));
    }
    let url = broker
        .context("give the broker URL with --broker, or paste the whole voxseal://enroll link")?;
    Ok((url.to_owned(), input.to_owned()))
}

fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = std::str::from_utf8(&b[i + 1..i + 3])?;
            out.push(u8::from_str_radix(h, 16).context("bad %-escape in the enrollment link")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

fn check_broker_url(url: &str) -> Result<()> {
    let local = url.starts_with("http://127.0.0.1")
        || url.starts_with("http://localhost")
        || url.starts_with("http://[::1]");
    if !(url.starts_with("https://") || local) {
        bail!(
            "the broker URL must use https:// (plain http only for a local dev stack on 127.0.0.1)"
        );
    }
    Ok(())
}

/// `voxseal enroll join`
pub fn join(cli: &Cli, a: &JoinArgs) -> Result<()> {
    let (url, code) = parse_enroll_link(&a.code, a.broker.as_deref())?;
    check_broker_url(&url)?;
    let ws = ui::open_workspace(cli)?;
    let (contractor, token) = runtime()?.block_on(BrokerSource::enroll(&url, &code))?;
    let store = TokenStore::new(ws.root());
    let file = a.file_store || std::env::var("VOXSEAL_TOKEN_STORE").as_deref() == Ok("file");
    let pass = if file { passphrase(true) } else { None };
    let backend = match store.save(&contractor, &url, &token, file, pass.as_ref()) {
        Ok(b) => b,
        Err(voxseal_cloud::token_store::TokenStoreError::NeedPassphrase) => {
            // No keychain: fall back to the encrypted file, asking for a passphrase.
            let pass = passphrase(true)
                .context("no keychain here and no passphrase: set VOXSEAL_TOKEN_PASSPHRASE")?;
            store.save(&contractor, &url, &token, true, Some(&pass))?
        }
        Err(e) => return Err(e.into()),
    };
    let mut settings = ws.settings()?;
    settings.contractor = Some(contractor.clone());
    ws.save_settings(&settings)?;
    ws.audit.append(
        "enrollment.joined",
        serde_json::json!({ "contractor": contractor, "broker": url, "store": backend }),
    )?;
    ui::step(&format!(
        "enrolled as {contractor} with {url}; the device token is in {}",
        match backend {
            Backend::Keychain => "the OS keychain".to_owned(),
            Backend::EncryptedFile => format!(
                "{} (encrypted)",
                ws.root().join("device-token.enc").display()
            ),
        }
    ));
    Ok(())
}

/// `voxseal upload`
pub fn upload(cli: &Cli, a: &UploadArgs) -> Result<()> {
    let ws = ui::open_workspace(cli)?;
    let config = ws.project()?;
    let storage = config.storage.clone().context(
        "the project config has no [storage] section: uploads are not set up for this project",
    )?;
    // Nothing queued: no credentials are needed, so no keychain or passphrase prompt, no broker.
    let (items, _damaged) = ws.outbox.list()?;
    if items.iter().all(|i| i.state.status == ItemStatus::Uploaded) {
        ui::step(&format!(
            "nothing to upload: 0 uploaded, 0 failed, 0 queued; {} raw recording(s) on this machine",
            ws.raw_on_machine()?.total()
        ));
        return Ok(());
    }
    let rt = runtime()?;
    let source: Arc<dyn CredentialSource> = if let Some(role) = &a.role_arn {
        let contractor = ws.contractor()?;
        Arc::new(rt.block_on(DirectSource::from_profile(
            a.profile.as_deref(),
            role.clone(),
            contractor,
            storage.bucket.clone(),
            storage.region.clone(),
            storage.kms_key_arn.clone(),
        )))
    } else {
        let store = TokenStore::new(ws.root());
        let (info, token) = store.load(|| passphrase(false))?;
        if let Some(url) = &storage.broker_url
            && url.trim_end_matches('/') != info.broker_url.trim_end_matches('/')
        {
            bail!(
                "this machine enrolled with {} but the project's broker is {url}; enroll again with a code for this project",
                info.broker_url
            );
        }
        Arc::new(BrokerSource::new(&info.broker_url, token))
    };
    let provider = CachingProvider::new(source);
    let mut cfg = UploadConfig::new(
        storage.endpoint.clone(),
        storage.region.clone(),
        storage.bucket.clone(),
        storage.kms_key_arn.clone(),
    );
    if let Some(mib) = a.part_size_mib {
        cfg.part_size = mib * 1024 * 1024;
        cfg.multipart_threshold = cfg.part_size;
    }
    let uploader = Uploader::new(cfg, provider, ws.outbox.clone(), ws.audit.clone());
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "uploading [{bar:30.cyan/black}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("valid template")
        .progress_chars("█▌ "),
    );
    let b = bar.clone();
    let progress = move |p: UploadProgress| {
        b.set_length(p.bytes_total.max(1));
        b.set_position(p.bytes_done);
        b.set_message(format!("{}/{} items", p.items_done, p.items_total));
    };
    let report = rt.block_on(uploader.drain(&progress));
    bar.finish_and_clear();
    let report = report?;
    for s in &report.uploaded {
        println!("uploaded {s}");
    }
    for (s, why) in &report.failed {
        eprintln!("{} {s}: {why}", ui::red("failed:"));
    }
    let raw = ws.raw_on_machine()?;
    if let Some(why) = &report.offline {
        eprintln!("{} {why}", ui::yellow("offline:"));
        eprintln!(
            "   {} item(s) stay queued; run `voxseal upload` again when online",
            report.queued
        );
    }
    ui::step(&format!(
        "{} uploaded, {} failed, {} queued; {} raw recording(s) on this machine",
        report.uploaded.len(),
        report.failed.len(),
        report.queued,
        raw.total()
    ));
    if !report.failed.is_empty() {
        bail!(
            "{} item(s) failed; see `voxseal outbox`",
            report.failed.len()
        );
    }
    Ok(())
}

fn open_registry(path: &std::path::Path) -> Result<voxseal_broker::registry::Registry> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        voxseal_core::fsutil::create_private_dir(dir)?;
    }
    Ok(voxseal_broker::registry::Registry::load(path)?)
}

/// The `voxseal://enroll` link for a code.
pub fn enroll_link(broker: &str, code: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("voxseal://enroll?broker={}&code={}", enc(broker), enc(code))
}

/// `voxseal enroll add`
pub fn enroll_add(a: &crate::cli::EnrollAddArgs) -> Result<()> {
    let id: voxseal_core::ids::ContractorId = a.contractor.parse()?;
    let mut reg = open_registry(&a.registry.registry)?;
    let code = reg.add(id.clone(), time::Duration::days(a.days as i64))?;
    reg.save()?;
    ui::step(&format!(
        "added {id}; the code below works once and expires {} (show it to them only; it is not stored)",
        voxseal_core::time::format_rfc3339(code.expires_at())
    ));
    println!("{}", code.expose_secret());
    if let Some(b) = &a.broker {
        println!("{}", enroll_link(b, code.expose_secret()));
    }
    Ok(())
}

/// `voxseal enroll list`
pub fn enroll_list(a: &crate::cli::RegistryArgs) -> Result<()> {
    let reg = open_registry(&a.registry)?;
    let list = reg.list();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        eprintln!(
            "no contractors yet; add one with `voxseal enroll add <id> --registry {}`",
            a.registry.display()
        );
    }
    for c in list {
        println!("{:<24} {:?}", c.id, c.status);
    }
    Ok(())
}

/// `voxseal enroll revoke`
pub fn enroll_revoke(a: &crate::cli::EnrollRevokeArgs) -> Result<()> {
    let id: voxseal_core::ids::ContractorId = a.contractor.parse()?;
    let mut reg = open_registry(&a.registry.registry)?;
    let changed = reg.revoke(&id)?;
    reg.save()?;
    if changed {
        ui::step(&format!(
            "revoked {id}: the broker issues them no new session"
        ));
    } else {
        ui::step(&format!("{id} was already revoked"));
    }
    let (true, Some(bucket)) = (a.now, &a.bucket) else {
        ui::step(
            "sessions already issued end within 15 minutes; to stop them now, run this again with \
             --now --bucket <upload bucket>",
        );
        return Ok(());
    };
    match crate::bucket_policy::deny_now(bucket, a.region.as_deref(), &id)? {
        None => ui::step(&format!(
            "the bucket policy of {bucket} already denies {id}'s sessions"
        )),
        Some(ids) => {
            ui::step(&format!(
                "the bucket policy of {bucket} now denies {id}'s sessions, including those already issued"
            ));
            ui::step(&format!(
                "keep it across stack updates: deploy with RevokedContractors={}",
                ids.join(",")
            ));
        }
    }
    Ok(())
}

/// `voxseal dev-stack`
pub fn dev_stack(cli: &Cli, a: &crate::cli::DevStackArgs) -> Result<()> {
    use voxseal_broker::devstack::{DEMO_CONTRACTOR, DevStack, DevStackOptions};
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => dirs::data_dir()
            .context("no data directory; pass --dir")?
            .join("voxseal-dev-stack"),
    };
    let rt = runtime()?;
    rt.block_on(async {
        let mut opts = DevStackOptions::new(&dir);
        opts.s3_bind.set_port(a.s3_port);
        opts.broker_bind.set_port(a.broker_port);
        opts.grant_lifetime_secs = a.grant_secs;
        let stack = DevStack::start(opts).await?;
        let info = stack.info.clone();
        let demo: voxseal_core::ids::ContractorId = DEMO_CONTRACTOR.parse()?;
        let code = stack.enrollment_code(&demo)?;
        ui::step(&format!("Voxseal dev stack in {}", dir.display()));
        eprintln!("   S3 endpoint    {}   (bucket {})", info.endpoint, voxseal_broker::devstack::BUCKET);
        eprintln!("   broker         {}", info.broker_url);
        eprintln!("   project config {}", info.project_path.display());
        eprintln!("   demo keys      {}/training.key (features), archive.key (raw audio)", info.keys_dir.display());
        eprintln!("   registry       {}", info.registry_path.display());
        eprintln!("   demo contractor {DEMO_CONTRACTOR}, one-time enrollment code:");
        println!("{code}");
        eprintln!("   link: {}", enroll_link(&info.broker_url, &code));
        eprintln!("   admin (local endpoint only; e.g. for the AWS CLI):");
        eprintln!(
            "     AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url {} s3 ls s3://{}/ --recursive",
            info.admin_access_key, info.admin_secret, info.endpoint, voxseal_broker::devstack::BUCKET
        );
        if a.join {
            let mut ws = ui::open_workspace(cli)?;
            let lead = std::fs::read_to_string(info.keys_dir.join("lead.pub"))?;
            voxseal_core::fsutil::write_atomic(&ws.root().join(ui::TRUSTED_LEAD_FILE), lead.as_bytes(), false)?;
            ws.trust(info.lead_pubkey.clone());
            ws.install_project(&info.project_path)?;
            let (contractor, token) = BrokerSource::enroll(&info.broker_url, &code).await?;
            let pass = passphrase(true).unwrap_or_else(|| SecretString::from("voxseal-dev-stack".to_owned()));
            let store = TokenStore::new(ws.root());
            let prefer_file = std::env::var("VOXSEAL_TOKEN_STORE").as_deref() == Ok("file");
            store.save(&contractor, &info.broker_url, &token, prefer_file, Some(&pass))?;
            let mut settings = ws.settings()?;
            settings.contractor = Some(contractor.clone());
            ws.save_settings(&settings)?;
            ui::step(&format!("data directory {} is set up and enrolled as {contractor}", ws.root().display()));
            eprintln!("   try: voxseal record --source synthetic:speech --fast --seconds 4 --prompt p001 --accept && voxseal upload");
        } else {
            eprintln!(
                "   to use it: voxseal init --contractor {DEMO_CONTRACTOR} --project {} && voxseal enroll join <code> --broker {}",
                info.project_path.display(),
                info.broker_url
            );
        }
        ui::step("running; press Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        stack.shutdown().await;
        ui::step("stopped");
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enroll_links_and_bare_codes() {
        let (u, c) = parse_enroll_link(
            "voxseal://enroll?broker=https%3A%2F%2Fb.example.com&code=vxe_ab_CD",
            None,
        )
        .unwrap();
        assert_eq!(
            (u.as_str(), c.as_str()),
            ("https://b.example.com", "vxe_ab_CD")
        );
        let (u, c) = parse_enroll_link("vxe_ab_CD", Some("http://127.0.0.1:8787")).unwrap();
        assert_eq!(
            (u.as_str(), c.as_str()),
            ("http://127.0.0.1:8787", "vxe_ab_CD")
        );
        assert!(parse_enroll_link("vxe_ab_CD", None).is_err());
        assert!(parse_enroll_link("voxseal://enroll?broker=x", None).is_err());
        assert!(check_broker_url("http://evil.example.com").is_err());
        assert!(check_broker_url("https://b.example.com").is_ok());
        let link = enroll_link("http://127.0.0.1:8787", "vxe_ab_CD");
        let (u, c) = parse_enroll_link(&link, None).unwrap();
        assert_eq!(
            (u.as_str(), c.as_str()),
            ("http://127.0.0.1:8787", "vxe_ab_CD")
        );
    }
}
