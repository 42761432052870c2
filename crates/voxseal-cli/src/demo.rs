//! `voxseal demo`: the whole laptop-side pipeline in a throwaway directory, narrated.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::ids::ContractorId;
use voxseal_core::store::outbox::OutboxItem;
use voxseal_core::store::take::Acceptance;
use voxseal_core::store::workspace::Workspace;

use crate::cli::DemoArgs;
use crate::record::capture;
use crate::ui;

/// `voxseal demo`
pub fn demo(a: &DemoArgs) -> Result<()> {
    let tmp;
    let root: PathBuf = match &a.keep {
        Some(d) => {
            voxseal_core::store::fsutil::create_private_dir(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("voxseal-demo-").tempdir()?;
            tmp.path().to_owned()
        }
    };
    ui::step(&format!("demo directory {}", root.display()));
    let keys = root.join("keys");
    let (training, archive) = make_identities(&keys)?;
    let (ws, config, contractor) = make_project(&root, &keys, &training, &archive)?;
    let item = record_and_seal(a, &ws, &config, &contractor)?;
    open_as_the_data_team(&root, &keys, &item)?;
    show_audit_log(&ws)?;
    match &a.keep {
        Some(d) => ui::step(&format!("kept everything in {}", d.display())),
        None => ui::step("removing the demo directory"),
    }
    Ok(())
}

/// Step 1, keys: the data team's training identity and the archive identity (the contractor
/// never has these); returns their recipients.
fn make_identities(keys: &Path) -> Result<(String, String)> {
    voxseal_core::store::fsutil::create_private_dir(keys)?;
    let training = voxseal_core::sealing::keys::generate_identity_file(
        &keys.join("training.key"),
        "demo training identity",
    )?;
    let archive = voxseal_core::sealing::keys::generate_identity_file(
        &keys.join("archive.key"),
        "demo archive identity",
    )?;
    ui::step("made two age identities (as a project lead would):");
    eprintln!("   training (features) {training}");
    eprintln!("   archive  (raw audio) {archive}");
    Ok((training.to_string(), archive.to_string()))
}

/// Step 2: the signed project config, a data directory for the demo contractor, and consent.
fn make_project(
    root: &Path,
    keys: &Path,
    training: &str,
    archive: &str,
) -> Result<(Workspace, ProjectConfig, ContractorId)> {
    let config_text = format!(
        "[project]\nname = \"demo\"\nconsent_text = \"I agree that my recordings are used to train speech models.\"\n\n\
         [recipients]\ntraining = [\"{training}\"]\narchive = [\"{archive}\"]\n\n\
         [[prompts]]\nid = \"p001\"\ntext = \"The quick brown fox jumps over the lazy dog.\"\n"
    );
    ProjectConfig::parse(&config_text, "demo project.toml")?;
    let project = root.join("project.toml");
    let lead_pub = voxseal_core::project::signing::generate_lead_key(
        &keys.join("lead.key"),
        &root.join("lead.pub"),
        None,
    )?;
    let sig = voxseal_core::project::signing::sign(
        &keys.join("lead.key"),
        None,
        config_text.as_bytes(),
        "voxseal demo project",
    )?;
    voxseal_core::store::fsutil::write_atomic(
        &voxseal_core::project::signing::sig_path(&project),
        sig.as_bytes(),
        false,
    )?;
    voxseal_core::store::fsutil::write_atomic(&project, config_text.as_bytes(), false)?;
    ui::step(
        "wrote project.toml and signed it with a lead key (the app verifies it before every use)",
    );
    let (mut ws, _) = Workspace::open(&root.join("data"))?;
    ws.trust(lead_pub);
    let config = ws.install_project(&project)?;
    let contractor: ContractorId = "demo-contractor".parse()?;
    let mut settings = ws.settings()?;
    settings.contractor = Some(contractor.clone());
    ws.save_settings(&settings)?;
    ui::step(&format!(
        "data directory {} for contractor {contractor}",
        ws.root().display()
    ));
    // The demo contractor accepts the demo consent, visibly, as a real one does at the terminal.
    let hash = voxseal_core::project::manifest::Consent::sha256_of(&config.project.consent_text);
    eprintln!(
        "   (the demo accepts its consent text, as with --accept-consent {})",
        &hash[..16]
    );
    crate::consent::ensure(&ws, &config, Some(&hash[..16]), false)?;
    Ok((ws, config, contractor))
}

/// Steps 3 and 4: one take, reviewed and sealed into the outbox.
fn record_and_seal(
    a: &DemoArgs,
    ws: &Workspace,
    config: &ProjectConfig,
    contractor: &ContractorId,
) -> Result<OutboxItem> {
    let source = match &a.source {
        Some(s) => s.clone(),
        None => default_source(),
    };
    ui::step(&format!(
        "recording {:.0} s from {source}: read aloud \"{}\"",
        a.seconds, config.prompts[0].text
    ));
    let factory = ui::source_factory(&source, false, 48_000)?;
    let take = capture(factory, ws, config, Some(a.seconds))?;
    let take = ws.review_take(take, Some(config.prompts[0].id.clone()), config)?;
    ui::step(&format!("quality of take {}", take.take().take_id));
    ui::print_quality(take.quality());
    eprintln!(
        "   the take is in the spool as {} (ChaCha20-Poly1305, key only in memory)",
        take.take()
            .spool
            .path()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    );

    let acceptance = Acceptance {
        despite_failed_checks: true, // a demo seals whatever it recorded
        ..Default::default()
    };
    let (bar, mut update) = ui::seal_bar();
    let item = take.accept(ws, config, contractor, &acceptance, &mut update);
    bar.finish_and_clear();
    let item = item.map_err(|e| anyhow::anyhow!("{e}"))?;
    ui::step(&format!(
        "sealed sample {} into the outbox:",
        item.manifest.sample_id
    ));
    for p in &item.manifest.payloads {
        eprintln!(
            "   {:<26} {:>10}  sha256 {}…",
            p.file,
            ui::bytes(p.size),
            &p.sha256[..16]
        );
    }
    eprintln!("   manifest.json (ids, durations, quality, hashes; no audio)");
    let raw = ws.raw_on_machine()?;
    eprintln!(
        "   spool wiped, key zeroized: {} take(s) left in the spool; {} sealed raw recording(s) await upload",
        raw.spool_takes, raw.sealed_raw
    );
    Ok(item)
}

/// Steps 5 and 6: opened as the data team and the archivist would, then the decrypted copies
/// wiped.
fn open_as_the_data_team(root: &Path, keys: &Path, item: &OutboxItem) -> Result<()> {
    let opened = root.join("opened");
    let mut ids = voxseal_core::sealing::keys::load_identities(&keys.join("training.key"))?;
    ids.extend(voxseal_core::sealing::keys::load_identities(
        &keys.join("archive.key"),
    )?);
    voxseal_core::store::fsutil::create_private_dir(&opened)?;
    let (_, results) = voxseal_core::sealing::open::open_item(&item.dir, &ids, Some(&opened))?;
    ui::step(
        "opened with both identities, hashes verified against the manifest, the manifest against what was sealed:",
    );
    for r in results {
        let o = r.context("opening a payload")?;
        eprintln!("   {:<9} {}", o.kind.as_str(), o.summary);
    }
    eprintln!(
        "   try it with standard tools:  age -d -i {} {}",
        keys.join("training.key").display(),
        item.dir.join("features.safetensors.age").display()
    );

    let wiped = voxseal_core::store::wipe::wipe_tree(&opened)?;
    ui::step(&format!(
        "wiped the decrypted copies ({} overwritten)",
        ui::bytes(wiped.bytes_overwritten)
    ));
    Ok(())
}

/// The audit log the demo left, verified.
fn show_audit_log(ws: &Workspace) -> Result<()> {
    let report = voxseal_core::store::audit::verify(ws.audit.path())?;
    ui::step(&format!(
        "audit log: {} events, chain {}",
        report.entries.len(),
        if report.is_intact() {
            "intact"
        } else {
            "DAMAGED"
        }
    ));
    for e in &report.entries {
        eprintln!("   {:>3} {}", e.seq, e.event);
    }
    Ok(())
}

/// The microphone if one can be opened, else a synthetic voice.
fn default_source() -> String {
    match voxseal_core::capture::audio::CpalSource::open(
        &voxseal_core::capture::audio::DeviceSelector::Default,
    ) {
        Ok(_) => "mic".into(),
        Err(e) => {
            eprintln!("   no usable microphone ({e}); using the synthetic voice instead");
            "synthetic:speech".into()
        }
    }
}
