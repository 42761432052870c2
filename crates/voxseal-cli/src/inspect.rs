//! Setup and read-only commands: init, devices, takes, outbox, keygen, wipe, audit.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};
use voxseal_core::project::ids::ContractorId;
use voxseal_core::store::audit::AuditEvent;
use voxseal_core::store::outbox::OutboxItem;

use crate::cli::{
    AuditShowArgs, AuditVerifyArgs, Cli, DevicesArgs, InitArgs, KeygenArgs, OutboxArgs, TakesArgs,
    WipeArgs,
};
use crate::{Exit, exit, ui};

/// `voxseal init`
pub fn init(cli: &Cli, a: &InitArgs) -> Result<()> {
    let contractor: ContractorId = a.contractor.parse()?;
    let ws = ui::create_workspace(cli)?;
    let previous = ws.settings()?.contractor;
    if let Some(previous) = previous.as_ref().filter(|p| **p != contractor) {
        refuse_switch_with_queued_items(&ws, previous, &contractor)?;
    }
    let config = ws.install_project(&a.project)?;
    let mut settings = ws.settings()?;
    settings.contractor = Some(contractor.clone());
    ws.save_settings(&settings)?;
    ws.audit.append(&AuditEvent::ContractorConfigured {
        contractor: contractor.clone(),
        previous,
    })?;
    ui::step(&format!(
        "{} set up in {} for project {} ({} prompts, {} mode)",
        contractor,
        ws.root().display(),
        config.project.name,
        config.prompts.len(),
        if config.capture.features_only {
            "features-only"
        } else {
            "raw + features"
        }
    ));
    if a.accept_consent.is_some() {
        crate::consent::ensure(&ws, &config, a.accept_consent.as_deref(), false)?;
    } else if ws.consent_for(&config)?.is_none() {
        eprintln!(
            "   before recording, accept the project's consent text: `voxseal record` shows it and asks (or pass --accept-consent)"
        );
    }
    Ok(())
}

/// A data directory holds one contractor's queue: switching while sealed items wait for upload
/// would upload them under the new contractor's credentials, or strand them.
pub(crate) fn refuse_switch_with_queued_items(
    ws: &voxseal_core::store::workspace::Workspace,
    previous: &ContractorId,
    next: &ContractorId,
) -> Result<()> {
    let queued = ws.queued()?;
    if queued > 0 {
        bail!(
            "{} holds {queued} sealed item(s) of {previous} not uploaded yet; the contractor was not changed to {next}. \
             Upload them first (`voxseal upload`), or set {next} up in another data directory (--data-dir <DIR>)",
            ws.root().display()
        );
    }
    Ok(())
}

/// `voxseal devices`
pub fn devices(a: &DevicesArgs) -> Result<()> {
    let devices = voxseal_core::capture::audio::list_input_devices()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    if devices.is_empty() {
        eprintln!(
            "no input devices found; use --source synthetic:speech or --source file:<path.wav>"
        );
    }
    for d in devices {
        println!(
            "{} {}  ({} Hz, {} ch, {})",
            if d.is_default { "*" } else { " " },
            d.name,
            d.sample_rate,
            d.channels,
            d.format
        );
    }
    Ok(())
}

fn items(cli: &Cli) -> Result<Vec<OutboxItem>> {
    let ws = ui::open_workspace(cli)?;
    let (items, damaged) = ws.outbox.list()?;
    for d in damaged {
        eprintln!("{} {d}", ui::yellow("warning:"));
    }
    Ok(items)
}

/// `voxseal takes`
pub fn takes(cli: &Cli, a: &TakesArgs) -> Result<()> {
    let items = items(cli)?;
    let mut by_prompt: BTreeMap<String, Vec<&OutboxItem>> = BTreeMap::new();
    for i in &items {
        let p = i
            .manifest
            .prompt_id
            .as_ref()
            .map_or_else(|| "(no prompt)".to_owned(), |p| p.to_string());
        if a.prompt.as_ref().is_none_or(|want| *want == p) {
            by_prompt.entry(p).or_default().push(i);
        }
    }
    if a.json {
        let v: BTreeMap<_, Vec<_>> = by_prompt
            .iter()
            .map(|(p, is)| {
                (
                    p.clone(),
                    is.iter()
                        .map(|i| {
                            serde_json::json!({
                                "sample": i.manifest.sample_id,
                                "take": i.manifest.take_id,
                                "supersedes": i.manifest.supersedes,
                                "status": i.state.status,
                                "duration_s": i.manifest.audio.duration_s,
                                "quality": i.manifest.quality.overall,
                            })
                        })
                        .collect(),
                )
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if by_prompt.is_empty() {
        eprintln!("no accepted takes yet; record one with `voxseal record --prompt <id>`");
    }
    let superseded: std::collections::HashSet<_> = items
        .iter()
        .filter_map(|i| i.manifest.supersedes.clone())
        .collect();
    for (p, is) in by_prompt {
        println!("{}", ui::bold(&p));
        for (n, i) in is.iter().enumerate() {
            let m = &i.manifest;
            let current = if superseded.contains(&m.sample_id) {
                "superseded"
            } else {
                "current"
            };
            println!(
                "  v{} {}  {:.1} s  quality {}  {}  {}",
                n + 1,
                m.sample_id,
                m.audio.duration_s,
                m.quality.overall,
                i.state.status,
                current
            );
        }
    }
    Ok(())
}

/// `voxseal outbox`
pub fn outbox(cli: &Cli, a: &OutboxArgs) -> Result<()> {
    let ws = ui::open_workspace(cli)?;
    let (items, damaged) = ws.outbox.list()?;
    let raw = ws.raw_on_machine()?;
    if a.json {
        let v = serde_json::json!({
            "items": items.iter().map(|i| serde_json::json!({
                "sample": i.manifest.sample_id,
                "prompt": i.manifest.prompt_id,
                "status": i.state.status,
                "local_bytes": i.local_bytes(),
                "attempts": i.state.attempts,
                "last_error": i.state.last_error,
                "dir": i.dir,
            })).collect::<Vec<_>>(),
            "damaged": damaged.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "raw_on_machine": raw,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for d in &damaged {
        eprintln!("{} {d}", ui::yellow("warning:"));
    }
    if items.is_empty() {
        println!("the outbox is empty");
    }
    for i in &items {
        let err = i
            .state
            .last_error
            .as_deref()
            .map(|e| format!("  ({e})"))
            .unwrap_or_default();
        println!(
            "{}  {:<10} {:>10}  {}{}",
            i.manifest.sample_id,
            i.state.status.to_string(),
            ui::bytes(i.local_bytes()),
            i.manifest.prompt_id.as_ref().map_or("-", |p| p.as_str()),
            err
        );
    }
    println!(
        "{} raw recording(s) on this machine ({} in the spool, {} sealed awaiting upload)",
        raw.total(),
        raw.spool_takes,
        raw.sealed_raw
    );
    Ok(())
}

/// `voxseal keygen`
pub fn keygen(a: &KeygenArgs) -> Result<()> {
    let recipient = voxseal_core::sealing::keys::generate_identity_file(&a.out, &a.label)?;
    eprintln!(
        "{} wrote the secret key to {} (mode 0600). Keep it offline and backed up: it is the only way to decrypt what is sealed to it.",
        ui::green("ok:"),
        a.out.display()
    );
    eprintln!("   public key (put it in project.toml under [recipients]):");
    println!("{recipient}");
    Ok(())
}

/// `voxseal wipe`
pub fn wipe(a: &WipeArgs) -> Result<()> {
    for p in &a.paths {
        let meta =
            std::fs::symlink_metadata(p).with_context(|| format!("cannot wipe {}", p.display()))?;
        if !(meta.is_file() || meta.is_dir()) {
            bail!(
                "{} is not a regular file or directory; refusing to wipe it",
                p.display()
            );
        }
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            bail!("wipe deletes for good: pass --yes to confirm when not at a terminal");
        }
        eprint!(
            "Securely delete {} path(s)? This cannot be undone. [y/N] ",
            a.paths.len()
        );
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            bail!("nothing wiped");
        }
    }
    for p in &a.paths {
        let report = if std::fs::symlink_metadata(p)?.is_dir() {
            voxseal_core::store::wipe::wipe_tree(p)?
        } else {
            voxseal_core::store::wipe::wipe_file(p)?
        };
        println!(
            "wiped {} ({} overwritten)",
            p.display(),
            ui::bytes(report.bytes_overwritten)
        );
    }
    eprintln!(
        "   note: on SSDs and copy-on-write filesystems an overwrite cannot reach every old copy; see docs/wipe.md"
    );
    Ok(())
}

/// `voxseal audit verify`
pub fn audit_verify(cli: &Cli, a: &AuditVerifyArgs) -> Result<()> {
    let path = match &a.file {
        Some(f) => f.clone(),
        None => ui::existing_data_dir(cli)?.join("audit.log"),
    };
    if !path.exists() {
        bail!("no audit log at {}", path.display());
    }
    let report = voxseal_core::store::audit::verify(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut sources = a.against.clone();
    if sources.is_empty() && a.file.is_none() {
        let outbox = ui::data_dir(cli)?.join("outbox");
        if outbox.is_dir() {
            sources.push(outbox);
        }
    }
    let anchors = crate::anchors::check(&report, &sources)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "file": path,
                "entries": report.entries.len(),
                "intact": report.is_intact(),
                "first_bad_line": report.first_bad.as_ref().map(|b| b.line),
                "reason": report.first_bad.as_ref().map(|b| &b.reason),
                "torn_bytes": report.torn_bytes,
                "anchors_checked": anchors.anchored,
                "checkpoints_checked": anchors.checkpoints,
                "anchored_up_to": anchors.newest,
                "anchor_failures": anchors.failures.iter().map(|(m, why)| serde_json::json!({"manifest": m, "reason": why})).collect::<Vec<_>>(),
            }))?
        );
    }
    if report.torn_bytes > 0 {
        eprintln!(
            "{} the last {} bytes are a torn line (a crash during a write); the next event will record the recovery",
            ui::yellow("note:"),
            report.torn_bytes
        );
    }
    for (m, why) in &anchors.failures {
        eprintln!("   {} {m}: {why}", ui::red("anchor:"));
    }
    if let Some(bad) = report.first_bad {
        return Err(Exit {
            code: exit::VERIFY,
            message: format!(
                "audit log {} is damaged at line {}: {} ({} lines before it verify)",
                path.display(),
                bad.line,
                bad.reason,
                report.entries.len()
            ),
        }
        .into());
    }
    if !anchors.failures.is_empty() {
        return Err(Exit {
            code: exit::VERIFY,
            message: format!(
                "audit log {}: the chain is intact, but {} of {} sealed manifest(s) and bucket checkpoint(s) record events it no longer holds: lines were cut off or the log was rewritten. Keep this log and the bucket's copies as they are, and do not rely on this log for the events after the last one that holds; ask the contractor what happened",
                path.display(),
                anchors.failures.len(),
                anchors.anchored + anchors.checkpoints
            ),
        }
        .into());
    }
    if !a.json {
        println!(
            "{} {} events, chain intact",
            ui::green("ok:"),
            report.entries.len()
        );
        if anchors.anchored + anchors.checkpoints == 0 {
            eprintln!(
                "   no sealed manifest or bucket checkpoint anchors this log: lines cut off at its end or a rewritten chain cannot be detected (pass --against <manifests downloaded from the bucket>)"
            );
        } else {
            eprintln!(
                "   {} manifest anchor(s) and {} bucket checkpoint(s) hold, up to event {}; the {} event(s) after it are not anchored yet",
                anchors.anchored,
                anchors.checkpoints,
                anchors.newest,
                (report.entries.len() as u64).saturating_sub(anchors.newest)
            );
        }
    }
    Ok(())
}

/// `voxseal audit show`
pub fn audit_show(cli: &Cli, a: &AuditShowArgs) -> Result<()> {
    let path = ui::existing_data_dir(cli)?.join("audit.log");
    let log = voxseal_core::store::audit::AuditLog::new(path);
    let entries = log.entries()?;
    for e in entries.iter().rev().take(a.last).rev() {
        println!("{:>5}  {}  {:<22} {}", e.seq, e.time, e.event, e.details);
    }
    Ok(())
}
