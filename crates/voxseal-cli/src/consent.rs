//! Consent in the CLI: nothing is recorded or sealed until the contractor has accepted the
//! project's consent text, at the terminal or with `--accept-consent <hash prefix>` (QA, scripts).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use voxseal_core::project::config::ProjectConfig;
use voxseal_core::project::manifest::Consent;
use voxseal_core::store::workspace::Workspace;

use crate::ui;

/// Hex digits of the consent hash a `--accept-consent` value must give at least.
pub const MIN_PREFIX: usize = 12;

/// The consent on record for `config`, recording it first if `accept` names the consent text's
/// SHA-256 (a prefix of at least [`MIN_PREFIX`] hex digits) or the contractor accepts at the
/// terminal (`ask`). Refuses otherwise, with the exact flag to pass.
pub fn ensure(
    ws: &Workspace,
    config: &ProjectConfig,
    accept: Option<&str>,
    ask: bool,
) -> Result<Consent> {
    let text = config.project.consent_text.trim();
    if text.is_empty() {
        bail!(
            "project {} has no consent text, so nothing can be recorded for it; ask your project lead for a config with one (`voxseal project init --consent <file>`)",
            config.project.name
        );
    }
    let hash = Consent::sha256_of(&config.project.consent_text);
    let flag = format!("--accept-consent {}", &hash[..16]);
    if let Some(prefix) = accept {
        let p = prefix.trim().to_ascii_lowercase();
        if p.len() < MIN_PREFIX || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "--accept-consent takes at least {MIN_PREFIX} hex digits of the consent text's SHA-256; for this project: {flag}"
            );
        }
        if !hash.starts_with(&p) {
            show(config, &hash);
            bail!(
                "--accept-consent {prefix} does not name this project's consent text (its SHA-256 is {hash}); read it above, then pass {flag}"
            );
        }
    }
    if let Some(c) = ws.consent_for(config)? {
        return Ok(c);
    }
    if accept.is_some() {
        show(config, &hash);
        return given(ws, config);
    }
    if ask && std::io::stdin().is_terminal() {
        show(config, &hash);
        eprint!("   Type 'I agree' to accept it (anything else stops): ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim().eq_ignore_ascii_case("i agree") {
            return given(ws, config);
        }
        bail!("consent was not given, so nothing was recorded");
    }
    show(config, &hash);
    bail!(
        "the project's consent text (above) has not been accepted on this machine; nothing is recorded or sealed without it: run this at a terminal to accept it, or pass {flag}"
    )
}

fn show(config: &ProjectConfig, hash: &str) {
    ui::step(&format!(
        "consent for project {} (SHA-256 {}…):",
        config.project.name,
        &hash[..16]
    ));
    for line in config.project.consent_text.trim().lines() {
        eprintln!("   | {line}");
    }
}

fn given(ws: &Workspace, config: &ProjectConfig) -> Result<Consent> {
    let c = ws.give_consent(config)?;
    eprintln!(
        "   consent recorded ({}, SHA-256 {}…); it goes into every sample's manifest",
        c.accepted_at,
        &c.text_sha256[..16]
    );
    Ok(c)
}
