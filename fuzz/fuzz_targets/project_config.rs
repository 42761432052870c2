//! The project config and what comes with it: `ProjectConfig::parse` (TOML), `parse_prompt_set`
//! (CSV or lines) and the lead-signature check (`signing::public_key_from_text` +
//! `signing::verify`) on arbitrary text.
//!
//! A config that parses must serialize (`to_toml`) and parse again to the same text; a prompt set
//! that parses must hold valid, unique prompts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxseal_core::project::config::{ProjectConfig, parse_prompt_set};
use voxseal_core::project::signing;
use voxseal_fuzz::encode::{CONFIG_PROMPTS, CONFIG_TOML, Input};

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mode = inp.u8() % 3;
    if mode == CONFIG_TOML || mode == CONFIG_PROMPTS {
        let Ok(text) = std::str::from_utf8(inp.rest()) else {
            return;
        };
        if mode == CONFIG_TOML {
            if let Ok(c) = ProjectConfig::parse(text, "fuzz.toml") {
                let out = c.to_toml();
                let c2 = ProjectConfig::parse(&out, "fuzz.toml")
                    .unwrap_or_else(|e| panic!("to_toml output does not parse: {e}\n{out}"));
                assert_eq!(c2.to_toml(), out, "to_toml is not stable");
            }
        } else if let Ok(prompts) = parse_prompt_set(text) {
            let mut seen = std::collections::HashSet::new();
            for p in &prompts {
                assert!(seen.insert(p.id.as_str().to_owned()));
                assert!(!p.text.trim().is_empty() && p.text.len() <= 2000);
                assert!(p.id.as_str().parse::<voxseal_core::project::ids::PromptId>().is_ok());
            }
        }
        return;
    }
    let pk = String::from_utf8_lossy(inp.long()).into_owned();
    let sig = String::from_utf8_lossy(inp.long()).into_owned();
    let body = inp.rest();
    let trusted = match signing::public_key_from_text(&pk) {
        Ok(k) => vec![k],
        Err(_) => vec![pk],
    };
    let _ = signing::verify(&trusted, body, &sig, "fuzz.toml");
});
