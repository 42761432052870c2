//! `voxseal open`: decrypt and verify sealed samples.

use std::path::Path;

use anyhow::{Result, bail};
use voxseal_core::project::manifest::{Manifest, PayloadKind};
use voxseal_core::sealing::open::{
    OpenError, Opened, open_file, open_item, open_payload, read_manifest,
};

use crate::cli::OpenArgs;
use crate::{Exit, exit, ui};

/// `voxseal open`: with `--out`, an item's files go to `<out>/<sample id>/`; an existing file is
/// never overwritten.
pub fn open(a: &OpenArgs) -> Result<()> {
    let mut identities = Vec::new();
    for i in &a.identity {
        identities.extend(voxseal_core::sealing::keys::load_identities(i)?);
    }
    if let Some(out) = &a.out {
        voxseal_core::store::fsutil::create_private_dir(out)?;
    }
    let manifest = a.manifest.as_deref().map(read_manifest).transpose()?;
    if let Some(m) = &manifest {
        check_key_prefixes(m.contractor.as_str(), a.manifest.iter().chain(&a.paths))?;
    }
    let mut tally = Tally::default();
    for path in &a.paths {
        // Payloads of an item, or a single file with --manifest, are checked against a manifest
        // even when they cannot be decrypted.
        let checked = path.is_dir() || manifest.is_some();
        let results = if path.is_dir() {
            let (m, rs) = open_item(path, &identities, a.out.as_deref())?;
            ui::step(&format!(
                "{} ({}, prompt {})",
                m.sample_id,
                m.contractor,
                m.prompt_id.as_ref().map_or("-", |p| p.as_str())
            ));
            rs
        } else {
            vec![open_one(path, &identities, manifest.as_ref(), a)?]
        };
        for r in results {
            tally.add(r, checked);
        }
    }
    tally.finish(a.out.is_some())
}

/// Opens one payload file, against `manifest` when given (its name then says which payload).
fn open_one(
    path: &Path,
    identities: &[Box<dyn age::Identity>],
    manifest: Option<&Manifest>,
    a: &OpenArgs,
) -> Result<Result<Opened, OpenError>> {
    let name = (path.file_name().and_then(|n| n.to_str())).unwrap_or_default();
    let kind = if name.ends_with(".wav.age") {
        Some(PayloadKind::Raw)
    } else if name.ends_with(".safetensors.age") {
        Some(PayloadKind::Features)
    } else {
        None
    };
    match (manifest, kind) {
        (Some(m), Some(k)) => {
            if m.payload(k).is_none() {
                bail!(
                    "the manifest lists no {} payload for {}",
                    k.as_str(),
                    path.display()
                );
            }
            ui::step(&path.display().to_string());
            Ok(open_payload(path, identities, m, k, a.out.as_deref()))
        }
        (Some(_), None) => bail!(
            "cannot tell what {} holds: name it *.wav.age or *.safetensors.age",
            path.display()
        ),
        (None, _) => {
            ui::step(&path.display().to_string());
            Ok(open_file(path, identities, None, a.out.as_deref()))
        }
    }
}

/// What `voxseal open` has opened and failed to open so far.
#[derive(Default)]
struct Tally {
    opened: usize,
    failures: usize,
    verify_failed: bool,
}

impl Tally {
    /// Prints one payload's result and counts it.
    fn add(&mut self, r: Result<Opened, OpenError>, checked: bool) {
        match r {
            Ok(o) => {
                self.opened += 1;
                let check = if o.verified && o.bound {
                    ui::green("verified")
                } else if o.verified {
                    ui::yellow("hash verified; manifest not bound (schema 1)")
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
                self.verify_failed |= matches!(
                    e,
                    OpenError::HashMismatch { .. }
                        | OpenError::BindingMismatch { .. }
                        | OpenError::SizeMismatch { .. }
                        | OpenError::Damaged { .. }
                        | OpenError::NotAge { .. }
                );
                eprintln!("   {} {e}", ui::red("failed:"));
                self.failures += 1;
            }
        }
    }

    /// Fails (exit 4 when a check failed) unless everything given could be opened.
    fn finish(self, written: bool) -> Result<()> {
        if self.failures > 0 {
            return Err(Exit {
                code: if self.verify_failed { exit::VERIFY } else { 1 },
                message: format!("{} payload(s) could not be opened", self.failures),
            }
            .into());
        }
        if self.opened == 0 {
            bail!("nothing could be decrypted with the given identities");
        }
        if !written {
            eprintln!("   (verified only; pass --out <dir> to write the decrypted files)");
        }
        Ok(())
    }
}

/// Refuses (exit 4) when the manifest or a payload was found under another contractor's key
/// prefix (`manifests/<c>/...`, `features/<c>/...`): only that contractor's credentials could
/// write there. Paths outside the bucket layout have nothing to compare.
fn check_key_prefixes<'a>(
    contractor: &str,
    paths: impl IntoIterator<Item = &'a std::path::PathBuf>,
) -> Result<()> {
    for path in paths {
        if let Err(e) = voxseal_core::store::key_layout::check_contractor_prefix(path, contractor) {
            return Err(Exit {
                code: exit::VERIFY,
                message: e.to_string(),
            }
            .into());
        }
    }
    Ok(())
}
