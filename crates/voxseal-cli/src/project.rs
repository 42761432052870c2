//! `voxseal project`: what a project lead creates and signs.

use std::io::IsTerminal;
use std::path::Path;

use age::secrecy::ExposeSecret;
use anyhow::{Context, Result, bail};
use voxseal_core::project::config::{ProjectConfig, Prompt, parse_prompt_set};
use voxseal_core::project::signing::{self, Password};

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

/// Where a project's identities went: their recipients, and a line per identity for the report.
struct Identities {
    training: String,
    archive: Option<String>,
    report: Vec<String>,
}

/// `voxseal project init`
pub fn init(a: &ProjectInitArgs) -> Result<()> {
    a.name
        .parse::<voxseal_core::project::ids::ContractorId>()
        .map_err(|_| anyhow::anyhow!("--name must be 3-63 characters from a-z, 0-9 and '-'"))?;
    if a.dir.exists() && std::fs::read_dir(&a.dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; choose a new directory",
            a.dir.display()
        );
    }
    let (prompts, consent) = read_prompts_and_consent(a)?;
    let password = match &a.lead_key {
        Some(k) => password_for(k)?,
        None if a.no_password => None,
        None => lead_password(true)?,
    };
    let keys = a.dir.join("keys");
    // Wrapping talks to AWS and can fail: do it before any file is written.
    let wrapped = (a.wrap_identities.as_deref())
        .map(|kms_key| wrapped_identities(a, kms_key))
        .transpose()?;
    voxseal_core::store::fsutil::create_private_dir(&keys)?;
    let identities = match wrapped {
        Some(identities) => identities,
        None => identity_files(a, &keys)?,
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
    let text = config_text(a, &consent, &identities, &prompts);
    ProjectConfig::parse(&text, "the generated project.toml")?;
    write_signed(&a.dir.join("project.toml"), &lead_key, password, &text)?;
    report_created(a, &lead_pub, &identities);
    println!("{lead_pub}");
    Ok(())
}

/// The prompt set and consent text `init` was given, checked.
fn read_prompts_and_consent(a: &ProjectInitArgs) -> Result<(Vec<Prompt>, String)> {
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
    Ok((prompts, consent))
}

/// The local-stack and test path: identities as plaintext files (mode 0600) in `keys`.
fn identity_files(a: &ProjectInitArgs, keys: &Path) -> Result<Identities> {
    let training = voxseal_core::sealing::keys::generate_identity_file(
        &keys.join("training.key"),
        &format!("{} training identity (features)", a.name),
    )?;
    let mut report = vec![
        "   keys/training.key                  decrypts features (PLAINTEXT: for the local stack and tests; production: --wrap-identities)".to_owned(),
    ];
    let archive = if a.features_only {
        None
    } else {
        report.push("   keys/archive.key                   decrypts raw audio (PLAINTEXT: keep it offline, or use --wrap-identities)".to_owned());
        Some(voxseal_core::sealing::keys::generate_identity_file(
            &keys.join("archive.key"),
            &format!("{} archive identity (raw audio)", a.name),
        )?)
    };
    Ok(Identities {
        training,
        archive,
        report,
    })
}

/// The production path: identities made in memory, wrapped under `kms_key` and stored in
/// Secrets Manager; nothing secret is written here.
fn wrapped_identities(a: &ProjectInitArgs, kms_key: &str) -> Result<Identities> {
    use crate::wrapped_identity::{IdentityVault, Purpose};
    let prefix = a
        .identity_secret_prefix
        .clone()
        .unwrap_or_else(|| format!("voxseal/{}", a.name));
    check_secret_prefix(&prefix)?;
    let mut purposes = vec![Purpose::Training];
    if !a.features_only {
        purposes.push(Purpose::Archive);
    }
    crate::cloud::runtime()?.block_on(async {
        let vault = IdentityVault::connect(a.region.as_deref()).await?;
        for p in &purposes {
            vault
                .refuse_existing(&format!("{prefix}/{}", p.as_str()))
                .await?;
        }
        let (mut recipients, mut report) = (Vec::new(), Vec::new());
        for p in purposes {
            let name = format!("{prefix}/{}", p.as_str());
            let identity = age::x25519::Identity::generate();
            let stored = vault
                .store_wrapped(
                    kms_key,
                    &name,
                    identity.to_string().expose_secret(),
                    &a.name,
                    p,
                )
                .await;
            if let Err(e) = stored {
                let made: Vec<&str> = report
                    .iter()
                    .map(|(n, _): &(String, String)| n.as_str())
                    .collect();
                return Err(e.context(if made.is_empty() {
                    "no secret was created".to_owned()
                } else {
                    format!(
                        "already created, delete before retrying: {}",
                        made.join(", ")
                    )
                }));
            }
            recipients.push(identity.to_public().to_string());
            report.push((name, stored?));
        }
        Ok(Identities {
            training: recipients[0].clone(),
            archive: recipients.get(1).cloned(),
            report: report
                .into_iter()
                .map(|(name, arn)| format!("   secret {name}   wrapped under {kms_key} ({arn})"))
                .collect(),
        })
    })
}

/// A Secrets Manager name prefix: 1-500 characters from `A-Za-z0-9/_+=.@-`, no `//`.
fn check_secret_prefix(prefix: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    if prefix.is_empty()
        || prefix.len() > 500
        || !prefix.chars().all(ok_char)
        || prefix.contains("//")
        || prefix.ends_with('/')
    {
        bail!(
            "--identity-secret-prefix: use 1-500 characters from A-Z a-z 0-9 / _ + = . @ - (no trailing or double '/')"
        );
    }
    Ok(())
}

/// The unsigned project.toml `init` writes.
fn config_text(
    a: &ProjectInitArgs,
    consent: &str,
    identities: &Identities,
    prompts: &[Prompt],
) -> String {
    let not_after = voxseal_core::time::format_rfc3339(
        time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(a.valid_days)),
    );
    let mut text = format!(
        "[project]\nname = {}\nserial = 1\nnot_after = {}\nconsent_text = {}\n\n[recipients]\ntraining = [{}]\n",
        toml_str(&a.name),
        toml_str(&not_after),
        toml_str(consent.trim()),
        toml_str(&identities.training)
    );
    if let Some(r) = &identities.archive {
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
    for p in prompts {
        text.push_str(&format!(
            "\n[[prompts]]\nid = {}\ntext = {}\n",
            toml_str(p.id.as_str()),
            toml_str(&p.text)
        ));
        if let Some(n) = &p.note {
            text.push_str(&format!("note = {}\n", toml_str(n)));
        }
    }
    text
}

/// What `init` made, on stderr.
fn report_created(a: &ProjectInitArgs, lead_pub: &str, identities: &Identities) {
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
    for line in &identities.report {
        eprintln!("{line}");
    }
    eprintln!(
        "{} keys/ holds secrets (mode 0600). Move them off this machine into a password manager or an offline store; \
         anyone with keys/lead.key can sign configs your contractors will accept.",
        ui::yellow("warning:")
    );
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
    voxseal_core::store::fsutil::write_new_atomic(&dir.join("lead.pub"), text.as_bytes(), false)?;
    Ok(lead_pub)
}

fn write_signed(config: &Path, key: &Path, password: Option<Password>, text: &str) -> Result<()> {
    let sig = signing::sign(key, password, text.as_bytes(), "voxseal project config")?;
    voxseal_core::store::fsutil::write_atomic(&signing::sig_path(config), sig.as_bytes(), false)?;
    voxseal_core::store::fsutil::write_atomic(config, text.as_bytes(), false)?;
    Ok(())
}

/// `voxseal project sign`
pub fn sign(a: &ProjectSignArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("cannot read {}", a.config.display()))?;
    ProjectConfig::parse(&text, &a.config.display().to_string())?;
    let password = password_for(&a.key)?;
    let sig = signing::sign(&a.key, password, text.as_bytes(), "voxseal project config")?;
    voxseal_core::store::fsutil::write_atomic(
        &signing::sig_path(&a.config),
        sig.as_bytes(),
        false,
    )?;
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
    let n = crate::release::sign_release(&a.dir, &a.key, password)?;
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
    let report = crate::release::verify_release(&a.dir, &trusted, a.updater_pubkey.as_deref())
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
