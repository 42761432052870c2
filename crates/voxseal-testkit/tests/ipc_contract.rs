//! The desktop app's command list is written in `src-tauri/build.rs` (the permissions Tauri
//! generates); the handler list, the capability the window gets and the front end's calls must
//! name exactly the same commands.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    let p = voxseal_testkit::repo_root().join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let len = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"));
    &text[from..from + len]
}

fn quoted(text: &str, quote: char) -> BTreeSet<String> {
    text.split(quote)
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_handlers_the_capability_and_the_front_end_name_exactly_the_build_script_s_commands() {
    let commands = quoted(
        between(
            &read("src-tauri/build.rs"),
            "const COMMANDS: &[&str] = &[",
            "];",
        ),
        '"',
    );
    assert!(commands.len() > 20, "{commands:?}");

    let lib = read("src-tauri/src/lib.rs");
    let handlers: BTreeSet<String> = between(&lib, "generate_handler![", "]")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        handlers, commands,
        "generate_handler! in src-tauri/src/lib.rs"
    );

    let capability: serde_json::Value =
        serde_json::from_str(&read("src-tauri/capabilities/main.json")).unwrap();
    let granted: BTreeSet<String> = (capability["permissions"].as_array().unwrap().iter())
        .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
        .map(|p| p.replace('-', "_"))
        .collect();
    assert_eq!(granted, commands, "src-tauri/capabilities/main.json");
    let others: Vec<&str> = (capability["permissions"].as_array().unwrap().iter())
        .filter_map(|p| p.as_str())
        .filter(|p| !p.starts_with("allow-"))
        .collect();
    assert_eq!(
        others,
        ["core:event:allow-listen", "core:event:allow-unlisten"]
    );

    let backend = read("ui/src/lib/backend.ts");
    let called: BTreeSet<String> = backend
        .split("call('")
        .skip(1)
        .filter_map(|s| s.split('\'').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(called, commands, "the calls in ui/src/lib/backend.ts");
}
