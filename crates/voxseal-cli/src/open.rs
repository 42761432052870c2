//! `voxseal open`: decrypt and verify sealed samples.

use anyhow::{Result, bail};
use voxseal_core::manifest::PayloadKind;
use voxseal_core::open::{OpenError, Opened, open_file, open_item, read_manifest};

use crate::cli::OpenArgs;
use crate::{Exit, exit, ui};

/// `voxseal open`: with `--out`, an item's files go to `<out>/<sample id>/`; an existing file is
/// never overwritten.
pub fn open(a: &OpenArgs) -> Result<()> {
    let mut identities = Vec::new();
    for i in &a.identity {
        identities.extend(voxseal_core::keys::load_identities(i)?);
    }
    if let Some(out) = &a.out {
        voxseal_core::fsutil::create_private_dir(out)?;
    }
    let manifest = a.manifest.as_deref().map(read_manifest).transpose()?;
    let mut opened = 0;
    let mut failures = Vec::new();
    let mut verify_failed = false;
    for path in &a.paths {
        // Payloads of an item, or a single file with --manifest, are checked against a manifest
        // even when they cannot be decrypted.
        let checked = path.is_dir() || manifest.is_some();
        let results: Vec<Result<Opened, OpenError>> = if path.is_dir() {
            let (m, rs) = open_item(path, &identities, a.out.as_deref())?;
            ui::step(&format!(
                "{} ({}, prompt {})",
                m.sample_id,
                m.contractor,
                m.prompt_id.as_ref().map_or("-", |p| p.as_str())
            ));
            rs
        } else {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let kind = if name.ends_with(".wav.age") {
                Some(PayloadKind::Raw)
            } else if name.ends_with(".safetensors.age") {
                Some(PayloadKind::Features)
            } else {
                None
            };
            let expected = match (&manifest, kind) {
                (Some(m), Some(k)) => match m.payload(k) {
                    Some(p) => Some((k, p.sha256.as_str())),
                    None => bail!(
                        "the manifest lists no {} payload for {}",
                        k.as_str(),
                        path.display()
                    ),
                },
                (Some(_), None) => bail!(
                    "cannot tell what {} holds: name it *.wav.age or *.safetensors.age",
                    path.display()
                ),
                (None, _) => None,
            };
            ui::step(&path.display().to_string());
            vec![open_file(path, &identities, expected, a.out.as_deref())]
        };
        for r in results {
            match r {
                Ok(o) => {
                    opened += 1;
                    let check = if o.verified {
                        ui::green("verified")
                    } else {
                        ui::yellow("not checked (no manifest)")
                    };
                    eprintln!("   {:<9} {}  [{}]", o.kind.as_str(), o.summary, check);
                    if let Some(p) = &o.output {
                        println!("{}", p.display());
                    }
                }
                Err(e @ OpenError::WrongIdentity { .. }) => eprintln!(
                    "   {} {e}{}",
                    ui::yellow("skipped:"),
                    if checked {
                        "; its size and SHA-256 match the manifest"
                    } else {
                        ""
                    }
                ),
                Err(e) => {
                    verify_failed |= matches!(
                        e,
                        OpenError::HashMismatch { .. }
                            | OpenError::SizeMismatch { .. }
                            | OpenError::Damaged { .. }
                            | OpenError::NotAge { .. }
                    );
                    eprintln!("   {} {e}", ui::red("failed:"));
                    failures.push(e);
                }
            }
        }
    }
    if !failures.is_empty() {
        return Err(Exit {
            code: if verify_failed { exit::VERIFY } else { 1 },
            message: format!("{} payload(s) could not be opened", failures.len()),
        }
        .into());
    }
    if opened == 0 {
        bail!("nothing could be decrypted with the given identities");
    }
    if a.out.is_none() {
        eprintln!("   (verified only; pass --out <dir> to write the decrypted files)");
    }
    Ok(())
}
