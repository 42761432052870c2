//! Cloud commands: `voxseal enroll join` and `voxseal upload`.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::SecretString;
use voxseal_cloud::provider::{
    BrokerSource, CachingProvider, CredentialSource, DirectSource, ProjectProof,
};
use voxseal_cloud::token_store::{Backend, TokenStore};
use voxseal_cloud::uploader::{DrainReport, UploadConfig, UploadProgress, Uploader, WAITING_AFTER};
use voxseal_core::project::config::{ProjectConfig, Storage as StorageConfig};
use voxseal_core::project::enroll_link::{BrokerUrl, EnrollLink};
use voxseal_core::project::install::Replace;
use voxseal_core::store::audit::AuditEvent;
use voxseal_core::store::outbox::ItemStatus;
use voxseal_core::store::workspace::Workspace;

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

/// `voxseal enroll join`: fetch the lead-signed project config from the link's broker, verify
/// it against the trusted lead key, show it, install it, then redeem the code. Needs no prior
/// `voxseal init`.
pub fn join(cli: &Cli, a: &JoinArgs) -> Result<()> {
    let ws = ui::create_workspace(cli)?;
    let installed = if ws.project_path().exists() {
        Some(ws.project()?)
    } else {
        None
    };
    let installed_broker = installed
        .as_ref()
        .and_then(|c| c.storage.as_ref())
        .map(|s| BrokerUrl::parse(&s.broker_url))
        .transpose()?;
    let given = a.broker.as_deref().map(BrokerUrl::parse).transpose()?;
    // A link is honoured only for the installed project's broker, unless switching on purpose.
    let bound = if a.switch_project {
        None
    } else {
        installed_broker.as_ref()
    };
    let link = EnrollLink::parse(&a.code, bound.or(given.as_ref()))?;
    let rt = runtime()?;
    let signed = rt.block_on(BrokerSource::fetch_project(
        link.broker.as_str(),
        ProjectProof::Code(&link.code),
    ))?;
    let origin = format!("the project config from {}", link.broker);
    let config = ws.check_signed(signed.config.as_bytes(), &signed.signature, &origin)?;
    check_config_broker(&config, &link.broker)?;
    // The broker names the code's contractor: a data directory holding another contractor's
    // queue is not handed over before the code is spent.
    if let (Some(previous), Some(next)) = (ws.settings()?.contractor, &signed.contractor)
        && previous != *next
    {
        crate::inspect::refuse_switch_with_queued_items(&ws, &previous, next)?;
    }
    if a.switch_project
        && let Some(old) = &installed
        && old.project.name != config.project.name
    {
        refuse_switch_with_queue(&ws, &old.project.name)?;
    }
    // With --accept-consent the consent text is shown when it is recorded, below.
    show_project(&config, a.accept_consent.is_none());
    let store = TokenStore::new(ws.root());
    let (backend, pass) = token_backend(&store, a.file_store)?;
    let replace = if a.switch_project {
        Replace::Switch
    } else {
        Replace::SameProject
    };
    ws.try_install(
        signed.config.as_bytes(),
        &signed.signature,
        &origin,
        replace,
    )?;
    let url = link.broker.to_string();
    let (contractor, token) = rt.block_on(BrokerSource::enroll(&url, &link.code))?;
    let backend = store.save(
        &contractor,
        &url,
        &token,
        backend == Backend::EncryptedFile,
        pass.as_ref(),
    )?;
    let mut settings = ws.settings()?;
    settings.contractor = Some(contractor.clone());
    ws.save_settings(&settings)?;
    ws.audit.append(&AuditEvent::EnrollmentJoined {
        contractor: contractor.clone(),
        broker: url.clone(),
        project: Some(config.project.name.clone()),
        serial: Some(config.project.serial),
        token_store: Some(
            match backend {
                Backend::Keychain => "keychain",
                Backend::EncryptedFile => "encrypted_file",
            }
            .into(),
        ),
    })?;
    if a.accept_consent.is_some() {
        crate::consent::ensure(&ws, &config, a.accept_consent.as_deref(), false)?;
    }
    ui::step(&format!(
        "enrolled as {contractor} in project {} with {url}; the device token is in {}",
        config.project.name,
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

/// On a broker contact: installs a newer signed config of this project if the broker has one
/// (said on stderr, audited). A refused one (older serial, bad signature, expired) is a warning
/// and changes nothing; an unreachable broker is left to the upload to report.
fn refresh_project(
    ws: &Workspace,
    rt: &tokio::runtime::Runtime,
    url: &str,
    token: &SecretString,
) -> Result<()> {
    let Ok(signed) = rt.block_on(BrokerSource::fetch_project(url, ProjectProof::Token(token)))
    else {
        return Ok(());
    };
    let origin = format!("the project config from {url}");
    match ws.try_install(
        signed.config.as_bytes(),
        &signed.signature,
        &origin,
        Replace::SameProject,
    ) {
        Ok((config, voxseal_core::project::install::Installed::Updated { from_serial })) => {
            ui::step(&format!(
                "the project lead updated project {}: settings version {from_serial} -> {}",
                config.project.name, config.project.serial
            ));
        }
        Ok(_) => {}
        Err(e) => {
            ws.audit.append(&AuditEvent::ProjectRefused {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
            eprintln!(
                "{} the broker offered a project config that was refused and not installed: {e}",
                ui::yellow("warning:")
            );
        }
    }
    Ok(())
}

/// The config's own broker must be the one the link named: a broker cannot hand out a config
/// that sends the app elsewhere.
fn check_config_broker(config: &ProjectConfig, broker: &BrokerUrl) -> Result<()> {
    let storage = config
        .storage
        .as_ref()
        .context("the project config has no [storage] section: it cannot be joined")?;
    if !BrokerUrl::parse(&storage.broker_url)?.same_origin(broker) {
        bail!(
            "the project config names the broker {} but came from {broker}: refusing it; ask your project lead for a new link",
            storage.broker_url
        );
    }
    Ok(())
}

fn refuse_switch_with_queue(ws: &Workspace, old: &str) -> Result<()> {
    let queued = ws.queued()?;
    if queued > 0 {
        bail!(
            "{queued} sealed sample(s) of project {old} are still waiting for upload in {}: run `voxseal upload` first, then switch",
            ws.root().display()
        );
    }
    Ok(())
}

fn show_project(config: &ProjectConfig, with_consent: bool) {
    ui::step(&format!(
        "project {} (config serial {}, valid until {}), signed by the project lead",
        config.project.name,
        config.project.serial,
        config.project.not_after.as_deref().unwrap_or("-")
    ));
    if with_consent && !config.project.consent_text.trim().is_empty() {
        eprintln!("   consent text (`voxseal record` asks you to accept it):");
        for line in config.project.consent_text.lines() {
            eprintln!("   | {line}");
        }
    }
}

/// Where the device token will go, settled before the one-time code is spent (a code spent on a
/// device that cannot keep its token is lost): the keychain, else an encrypted file with a
/// passphrase from the environment or the terminal.
fn token_backend(store: &TokenStore, file_store: bool) -> Result<(Backend, Option<SecretString>)> {
    let file = file_store || std::env::var("VOXSEAL_TOKEN_STORE").as_deref() == Ok("file");
    let pass = if file { passphrase(true) } else { None };
    match store.usable_backend(file, pass.as_ref()) {
        Ok(b) => Ok((b, pass)),
        Err(voxseal_cloud::token_store::TokenStoreError::NeedPassphrase) => {
            let pass = passphrase(true).context(
                "no usable keychain here and no passphrase for an encrypted token file: set \
                 VOXSEAL_TOKEN_PASSPHRASE (or run in a terminal); the enrollment code was not used",
            )?;
            Ok((Backend::EncryptedFile, Some(pass)))
        }
        Err(e) => Err(e.into()),
    }
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
    let provider = CachingProvider::new(credential_source(&ws, &rt, &storage, a)?);
    let cfg = upload_config(&storage, a);
    let uploader = Uploader::new(cfg, provider, ws.outbox.clone(), ws.audit.clone());
    let bar = upload_bar();
    let b = bar.clone();
    let waiting = std::sync::atomic::AtomicBool::new(false);
    let progress = move |p: UploadProgress| {
        b.set_length(p.bytes_total.max(1));
        b.set_position(p.bytes_done);
        let items = format!("{}/{} items", p.items_done, p.items_total);
        if p.waiting_for_network {
            b.set_message(format!("{items}, waiting for the network"));
        } else {
            b.set_message(items);
        }
        // Without a terminal (no bar), the change is said on a line of its own.
        let was = waiting.swap(p.waiting_for_network, std::sync::atomic::Ordering::Relaxed);
        if b.is_hidden() && was != p.waiting_for_network {
            ui::step(&if p.waiting_for_network {
                format!(
                    "waiting for the network: nothing has left for {} s; the upload goes on when the connection is back",
                    WAITING_AFTER.as_secs()
                )
            } else {
                "the network is back".to_owned()
            });
        }
    };
    let report = rt.block_on(uploader.drain(&progress));
    bar.finish_and_clear();
    print_drained(&ws, &report?)
}

/// Where `voxseal upload` gets credentials: the role in direct mode, else the broker this
/// machine enrolled with (which must be the project's).
fn credential_source(
    ws: &Workspace,
    rt: &tokio::runtime::Runtime,
    storage: &StorageConfig,
    a: &UploadArgs,
) -> Result<Arc<dyn CredentialSource>> {
    if let Some(role) = &a.role_arn {
        let contractor = ws.contractor()?;
        return Ok(Arc::new(rt.block_on(DirectSource::from_profile(
            a.profile.as_deref(),
            role.clone(),
            contractor,
            storage.bucket.clone(),
            storage.region.clone(),
            storage.kms_key_arn.clone(),
        ))));
    }
    let store = TokenStore::new(ws.root());
    let (info, token) = store.load(|| passphrase(false))?;
    if !BrokerUrl::parse(&storage.broker_url)?.same_origin(&BrokerUrl::parse(&info.broker_url)?) {
        bail!(
            "this machine enrolled with {} but the project's broker is {}; enroll again with a code for this project",
            info.broker_url,
            storage.broker_url
        );
    }
    refresh_project(ws, rt, &info.broker_url, &token)?;
    Ok(Arc::new(BrokerSource::new(&info.broker_url, token)))
}

/// The project's storage with the part size and parts in flight given on the command line.
fn upload_config(storage: &StorageConfig, a: &UploadArgs) -> UploadConfig {
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
    if let Some(n) = a.parts_in_flight {
        cfg.parallel_parts = n.into();
    }
    cfg
}

/// The upload progress bar (hidden unless stderr is a terminal).
fn upload_bar() -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "uploading [{bar:30.cyan/black}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left, {msg}",
        )
        .expect("valid template")
        .progress_chars("█▌ "),
    );
    bar
}

/// Prints what a drain did; fails when an item failed.
fn print_drained(ws: &Workspace, report: &DrainReport) -> Result<()> {
    for s in &report.uploaded {
        println!("uploaded {s}");
    }
    for (s, why) in &report.failed {
        eprintln!("{} {s}: {why}", ui::red("failed:"));
    }
    if let Some(why) = &report.offline {
        eprintln!("{} {why}", ui::yellow("offline:"));
        eprintln!(
            "   {} item(s) stay queued; run `voxseal upload` again when online",
            report.queued
        );
    }
    if let Some(why) = &report.checkpoint_error {
        eprintln!(
            "{} the audit checkpoint was not stored ({why}); the uploads stand, and it is tried again after the next upload",
            ui::yellow("note:")
        );
    }
    ui::step(&format!(
        "{} uploaded, {} failed, {} queued; {} raw recording(s) on this machine",
        report.uploaded.len(),
        report.failed.len(),
        report.queued,
        ws.raw_on_machine()?.total()
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
        voxseal_core::store::fsutil::create_private_dir(dir)?;
    }
    Ok(voxseal_broker::registry::Registry::load(path)?)
}

/// The `voxseal://enroll` link for a code at a broker.
pub fn enroll_link(broker: &str, code: &str) -> Result<String> {
    Ok(EnrollLink {
        broker: BrokerUrl::parse(broker)?,
        code: code.to_owned(),
    }
    .to_string())
}

/// `voxseal enroll add`
pub fn enroll_add(a: &crate::cli::EnrollAddArgs) -> Result<()> {
    let id: voxseal_core::project::ids::ContractorId = a.contractor.parse()?;
    let mut reg = open_registry(&a.registry.registry)?;
    let code = reg.add(id.clone(), time::Duration::days(a.days as i64))?;
    reg.save()?;
    ui::step(&format!(
        "added {id}; the code below works once and expires {} (show it to them only; it is not stored)",
        voxseal_core::time::format_rfc3339(code.expires_at())
    ));
    println!("{}", code.expose_secret());
    if let Some(b) = &a.broker {
        println!("{}", enroll_link(b, code.expose_secret())?);
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
    let id: voxseal_core::project::ids::ContractorId = a.contractor.parse()?;
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
    use voxseal_localstack::devstack::{DEMO_CONTRACTOR, DevStack, DevStackOptions};
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => dirs::data_local_dir()
            .context("no data directory; pass --dir")?
            .join("voxseal-dev-stack"),
    };
    let rt = runtime()?;
    rt.block_on(async {
        let mut opts = DevStackOptions::new(&dir);
        opts.s3_bind.set_port(a.s3_port);
        opts.broker_bind.set_port(a.broker_port);
        opts.grant_lifetime_secs = a.grant_secs;
        opts.max_take_s = a.max_take_s;
        let stack = DevStack::start(opts).await?;
        let info = stack.info.clone();
        let demo: voxseal_core::project::ids::ContractorId = DEMO_CONTRACTOR.parse()?;
        let code = stack.enrollment_code(&demo)?;
        ui::step(&format!("Voxseal dev stack in {}", dir.display()));
        eprintln!("   S3 endpoint    {}   (bucket {})", info.endpoint, voxseal_localstack::devstack::BUCKET);
        eprintln!("   broker         {}", info.broker_url);
        eprintln!("   project config {}", info.project_path.display());
        eprintln!(
            "   demo keys      {} (features), archive.key (raw audio)",
            info.keys_dir.join("training.key").display()
        );
        eprintln!("   registry       {}", info.registry_path.display());
        eprintln!("   demo contractor {DEMO_CONTRACTOR}, one-time enrollment code:");
        println!("{code}");
        eprintln!("   link: {}", enroll_link(&info.broker_url, &code)?);
        eprintln!("   admin (local endpoint only; e.g. for the AWS CLI):");
        eprintln!(
            "     AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url {} s3 ls s3://{}/ --recursive",
            info.admin_access_key, info.admin_secret, info.endpoint, voxseal_localstack::devstack::BUCKET
        );
        if a.join {
            let mut ws = ui::create_workspace(cli)?;
            ws.trust(info.lead_pubkey.clone());
            let config = ws.install_project(&info.project_path)?;
            let (contractor, token) = BrokerSource::enroll(&info.broker_url, &code).await?;
            let pass = passphrase(true).unwrap_or_else(|| SecretString::from("voxseal-dev-stack".to_owned()));
            let store = TokenStore::new(ws.root());
            let prefer_file = std::env::var("VOXSEAL_TOKEN_STORE").as_deref() == Ok("file");
            store.save(&contractor, &info.broker_url, &token, prefer_file, Some(&pass))?;
            let mut settings = ws.settings()?;
            settings.contractor = Some(contractor.clone());
            ws.save_settings(&settings)?;
            // The local stack's demo contractor accepts the demo consent, visibly.
            let hash = voxseal_core::project::manifest::Consent::sha256_of(&config.project.consent_text);
            eprintln!("   (accepting the local demo project's consent, as with --accept-consent {})", &hash[..16]);
            crate::consent::ensure(&ws, &config, Some(&hash[..16]), false)?;
            ui::step(&format!("data directory {} is set up and enrolled as {contractor}", ws.root().display()));
            eprintln!("   the stack signs its config with its own lead key; trust it in each command:");
            eprintln!("   export VOXSEAL_TRUST_LEAD_KEY={}", info.keys_dir.join("lead.pub").display());
            eprintln!("   try: voxseal record --source synthetic:speech --fast --seconds 4 --prompt p001 --accept && voxseal upload");
        } else {
            eprintln!(
                "   to use it: VOXSEAL_TRUST_LEAD_KEY={} voxseal enroll join '<link>'",
                info.keys_dir.join("lead.pub").display()
            );
        }
        ui::step("running; press Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        stack.shutdown().await;
        ui::step("stopped");
        anyhow::Ok(())
    })
}
