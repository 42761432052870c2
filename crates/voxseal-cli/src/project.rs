//! `voxseal project`: what a project lead creates and signs.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use voxseal_core::config::{ProjectConfig, parse_prompt_set};
use voxseal_core::signing::{self, Password};

use crate::cli::{
    ProjectInitArgs, ProjectSignArgs, ProjectVerifyArgs, SignReleaseArgs, VerifyReleaseArgs,
};
use crate::ui;

fn lead_password(confirm: bool) -> Result<Option<Password>> {
    if let Ok(p) = std::env::var("VOXSEAL_LEAD_KEY_PASSWORD") {
        return Ok(Some(Password::new(p)));
    }
    if !std::io::stdin().is_terminal() {
        bail!("the lead key needs a password: set VOXSEAL_LEAD_KEY_PASSWORD, or use --no-password");
    }
    let p = rpassword::prompt_password("Password for the lead signing key: ")?;
    if confirm && rpassword::prompt_password("Again: ")? != p {
        bail!("the passwords differ");
    }
    if p.len() < 12 {
        bail!("use at least 12 characters for the lead key's password");
    }
    Ok(Some(Password::new(p)))
}

/// A TOML basic string literal.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `voxseal project init`
pub fn init(a: &ProjectInitArgs) -> Result<()> {
    a.name
        .parse::<voxseal_core::ids::ContractorId>()
        .map_err(|_| anyhow::anyhow!("--name must be 3-63 characters from a-z, 0-9 and '-'"))?;
    if a.dir.exists() && std::fs::read_dir(&a.dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; choose a new directory",
            a.dir.display()
        );
    }
    // A project without prompts or consent text could not be recorded for: refuse it here.
    let (Some(prompts_file), Some(consent_file)) = (&a.prompts, &a.consent) else {
        bail!(
            "a project needs prompts and a consent text (contractors accept it before recording): pass --prompts <file> (CSV `id,text,note` or one prompt per line) and --consent <text file>"
        );
    };
    let prompts = parse_prompt_set(
        &std::fs::read_to_string(prompts_file)
            .with_context(|| format!("cannot read {}", prompts_file.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", prompts_file.display()))?;
    if prompts.is_empty() {
        bail!("{} holds no prompts", prompts_file.display());
    }
    let consent = std::fs::read_to_string(consent_file)
        .with_context(|| format!("cannot read {}", consent_file.display()))?;
    if consent.trim().is_empty() {
        bail!(
            "{} is empty: contractors must have a consent text to accept",
            consent_file.display()
        );
    }
    let password = match &a.lead_key {
        Some(k) => password_for(k)?,
        None if a.no_password => None,
        None => lead_password(true)?,
    };
    let keys = a.dir.join("keys");
    voxseal_core::fsutil::create_private_dir(&keys)?;
    let training = voxseal_core::keys::generate_identity_file(
        &keys.join("training.key"),
        &format!("{} training identity (features)", a.name),
    )?;
    let archive = if a.features_only {
        None
    } else {
        Some(voxseal_core::keys::generate_identity_file(
            &keys.join("archive.key"),
            &format!("{} archive identity (raw audio)", a.name),
        )?)
    };
    let (lead_key, lead_pub) = match (&a.lead_key, &a.lead_pub) {
        (Some(key), Some(public)) => (
            key.clone(),
            reuse_lead_key(key, public, &a.dir, password.clone())?,
        ),
        _ => {
            let key = keys.join("lead.key");
            let public =
                signing::generate_lead_key(&key, &a.dir.join("lead.pub"), password.clone())?;
            (key, public)
        }
    };

    let not_after = voxseal_core::time::format_rfc3339(
        time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(a.valid_days)),
    );
    let mut text = format!(
        "[project]\nname = {}\nserial = 1\nnot_after = {}\nconsent_text = {}\n\n[recipients]\ntraining = [{}]\n",
        toml_str(&a.name),
        toml_str(&not_after),
        toml_str(consent.trim()),
        toml_str(&training)
    );
    if let Some(r) = &archive {
        text.push_str(&format!("archive = [{}]\n", toml_str(r)));
    }
    text.push_str(&format!(
        "\n[capture]\nfeatures_only = {}\n",
        a.features_only
    ));
    if let (Some(b), Some(r), Some(k)) = (&a.bucket, &a.region, &a.kms_key_arn) {
        text.push_str(&format!(
            "\n[storage]\nbucket = {}\nregion = {}\nkms_key_arn = {}\nbroker_url = {}\n",
            toml_str(b),
            toml_str(r),
            toml_str(k),
            toml_str(a.broker_url.as_deref().unwrap_or_default())
        ));
        if let Some(e) = &a.endpoint {
            text.push_str(&format!("endpoint = {}\n", toml_str(e)));
        }
    }
    for p in &prompts {
        text.push_str(&format!(
            "\n[[prompts]]\nid = {}\ntext = {}\n",
            toml_str(p.id.as_str()),
            toml_str(&p.text)
        ));
        if let Some(n) = &p.note {
            text.push_str(&format!("note = {}\n", toml_str(n)));
        }
    }
    ProjectConfig::parse(&text, "the generated project.toml")?;
    let config = a.dir.join("project.toml");
    write_signed(&config, &lead_key, password, &text)?;

    ui::step(&format!(
        "project {} created in {}",
        a.name,
        a.dir.display()
    ));
    eprintln!(
        "   project.toml + project.toml.sig   the signed config to distribute (with the installer)"
    );
    eprintln!(
        "   lead.pub                           the lead public key: build the app with VOXSEAL_LEAD_PUBKEY={lead_pub}"
    );
    eprintln!(
        "   keys/lead.key                      the lead signing key ({})",
        if a.no_password {
            "UNENCRYPTED"
        } else {
            "password-protected"
        }
    );
    eprintln!(
        "   keys/training.key                  decrypts features: give it to the data team only"
    );
    if archive.is_some() {
        eprintln!(
            "   keys/archive.key                   decrypts raw audio: keep it offline (an encrypted USB key in a safe)"
        );
    }
    eprintln!(
        "{} keys/ holds secrets (mode 0600). Move them off this machine into a password manager or an offline store; \
         anyone with keys/lead.key can sign configs your contractors will accept.",
        ui::yellow("warning:")
    );
    println!("{lead_pub}");
    Ok(())
}

/// Checks that `key` signs what `public` verifies, and copies `public` into the project.
fn reuse_lead_key(
    key: &Path,
    public: &Path,
    dir: &Path,
    password: Option<Password>,
) -> Result<String> {
    let text = std::fs::read_to_string(public)
        .with_context(|| format!("cannot read {}", public.display()))?;
    let lead_pub = signing::public_key_from_text(&text)?;
    let probe = b"voxseal lead key check";
    let sig = signing::sign(key, password, probe, "key check")?;
    signing::verify(
        std::slice::from_ref(&lead_pub),
        probe,
        &sig,
        "the lead key check",
    )
    .map_err(|_| {
        anyhow::anyhow!(
            "{} is not the public key of {}",
            public.display(),
            key.display()
        )
    })?;
    voxseal_core::fsutil::write_new_atomic(&dir.join("lead.pub"), text.as_bytes(), false)?;
    Ok(lead_pub)
}

fn write_signed(config: &Path, key: &Path, password: Option<Password>, text: &str) -> Result<()> {
    let sig = signing::sign(key, password, text.as_bytes(), "voxseal project config")?;
    voxseal_core::fsutil::write_atomic(&signing::sig_path(config), sig.as_bytes(), false)?;
    voxseal_core::fsutil::write_atomic(config, text.as_bytes(), false)?;
    Ok(())
}

/// `voxseal project sign`
pub fn sign(a: &ProjectSignArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("cannot read {}", a.config.display()))?;
    ProjectConfig::parse(&text, &a.config.display().to_string())?;
    let password = password_for(&a.key)?;
    let sig = signing::sign(&a.key, password, text.as_bytes(), "voxseal project config")?;
    voxseal_core::fsutil::write_atomic(&signing::sig_path(&a.config), sig.as_bytes(), false)?;
    ui::step(&format!(
        "signed {} -> {}",
        a.config.display(),
        signing::sig_path(&a.config).display()
    ));
    Ok(())
}

/// A project.toml whose signature (project.toml.sig) verifies against `lead_pub`, or the
/// pinned lead keys without it; a bad signature exits 4.
pub fn load_verified(config: &Path, lead_pub: Option<&Path>) -> Result<ProjectConfig> {
    let trusted = match lead_pub {
        Some(p) => vec![signing::public_key_from_text(&std::fs::read_to_string(p)?)?],
        None => signing::pinned_lead_keys(),
    };
    let bytes = signing::verify_file(&trusted, config).map_err(|e| crate::Exit {
        code: crate::exit::VERIFY,
        message: e.to_string(),
    })?;
    Ok(ProjectConfig::parse(
        std::str::from_utf8(&bytes)?,
        &config.display().to_string(),
    )?)
}

/// `voxseal project verify`
pub fn verify(a: &ProjectVerifyArgs) -> Result<()> {
    let config = load_verified(&a.config, a.lead_pub.as_deref())?;
    println!(
        "{} {}: signature verifies; project {}, {} prompts, {} training and {} archive recipient(s)",
        ui::green("ok:"),
        a.config.display(),
        config.project.name,
        config.prompts.len(),
        config.recipients.training.len(),
        config.recipients.archive.len()
    );
    Ok(())
}

fn password_for(key: &Path) -> Result<Option<Password>> {
    // An unencrypted key signs without a password; otherwise ask for it.
    Ok(match signing::sign(key, None, b"probe", "probe") {
        Ok(_) => None,
        Err(_) => lead_password(false)?,
    })
}

/// `voxseal sign-release`
pub fn sign_release(a: &SignReleaseArgs) -> Result<()> {
    let password = password_for(&a.key)?;
    let n = voxseal_core::release::sign_release(&a.dir, &a.key, password)?;
    ui::step(&format!(
        "wrote and signed {}/SHA256SUMS over {n} artifact(s)",
        a.dir.display()
    ));
    Ok(())
}

/// `voxseal verify-release`
pub fn verify_release(a: &VerifyReleaseArgs) -> Result<()> {
    let trusted = match &a.lead_pub {
        Some(p) => vec![signing::public_key_from_text(&std::fs::read_to_string(p)?)?],
        None => signing::pinned_lead_keys(),
    };
    let report =
        voxseal_core::release::verify_release(&a.dir, &trusted, a.updater_pubkey.as_deref())
            .map_err(|e| crate::Exit {
                code: crate::exit::VERIFY,
                message: e.to_string(),
            })?;
    for f in &report.verified {
        println!("ok  {f}");
    }
    for f in &report.updater_verified {
        println!("ok  {f} (updater signature)");
    }
    ui::step(&format!(
        "release verified: SHA256SUMS signed by the project lead, {} artifact(s) match, {} updater signature(s) valid",
        report.verified.len(),
        report.updater_verified.len()
    ));
    Ok(())
}
