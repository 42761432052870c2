//! The desktop app's commands are written once, in voxseal-app's command table
//! (`crates/voxseal-app/src/commands.rs`): src-tauri's build script declares them to Tauri (the
//! permissions it generates) and the UI's `commands.ts` is generated from it. Here: src-tauri's
//! command functions take exactly the table's arguments (names and types) and return its types,
//! and the handler list, the capability the window gets, the front end's calls and the commands
//! table of docs/app-ipc.md name exactly the table's commands (the docs also its arguments).

use std::collections::{BTreeMap, BTreeSet};

/// The command table (`Command`, `COMMANDS`).
#[allow(dead_code)]
mod table {
    include!("../../voxseal-app/src/commands.rs");
}

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

/// A command as src-tauri's `#[tauri::command]` function declares it: (name, type) of each
/// argument the web view passes (not `State<..>` or `AppHandle`), and the type inside
/// `CommandResult<..>`. Types lose their paths and spaces (`update::UpdateOffer` reads
/// `UpdateOffer`).
#[derive(Debug, PartialEq, Eq)]
struct Signature {
    args: Vec<(String, String)>,
    returns: String,
}

/// Splits `text` at top-level commas (not those inside `<..>` or `(..)`).
fn split_top_level(text: &str) -> Vec<String> {
    let (mut parts, mut depth, mut current) = (Vec::new(), 0i32, String::new());
    for c in text.chars() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `text` up to the `)` that closes an already open `(`, and the rest after it.
fn split_at_closing_paren(text: &str) -> (&str, &str) {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return (&text[..i], &text[i + 1..]);
        }
    }
    panic!("no closing parenthesis in {text:?}")
}

/// A Rust type without spaces and without module paths (`Option<update::UpdateOffer>` reads
/// `Option<UpdateOffer>`).
fn normalize_type(ty: &str) -> String {
    let compact: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = String::new();
    let mut word = String::new();
    for c in compact.chars().chain(std::iter::once('\0')) {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        out.push_str(word.rsplit("::").next().unwrap_or_default());
        word.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// Every `#[tauri::command]` function of `lib_rs`, by name.
fn command_functions(lib_rs: &str) -> BTreeMap<String, Signature> {
    let mut found = BTreeMap::new();
    for chunk in lib_rs.split("#[tauri::command]").skip(1) {
        let after_fn = between(chunk, "fn ", "{");
        let (name, rest) = after_fn.split_once('(').expect("fn name(");
        let (params, ret) = split_at_closing_paren(rest);
        let returns = ret
            .trim()
            .strip_prefix("->")
            .map(str::trim)
            .and_then(|r| r.strip_prefix("CommandResult<"))
            .and_then(|r| r.strip_suffix('>'))
            .unwrap_or_else(|| panic!("{name}: returns CommandResult<..>"));
        let args = split_top_level(params)
            .iter()
            .map(|p| {
                let (n, t) = p.split_once(':').expect("name: type");
                (n.trim().to_owned(), normalize_type(t))
            })
            .filter(|(_, t)| !t.starts_with("State<") && t != "AppHandle")
            .collect();
        found.insert(
            name.trim().to_owned(),
            Signature {
                args,
                returns: normalize_type(returns),
            },
        );
    }
    found
}

/// The table's commands, by name.
fn table_signatures() -> BTreeMap<String, Signature> {
    (table::COMMANDS.iter())
        .map(|c| {
            let args = (c.args.iter())
                .map(|(n, t)| ((*n).to_owned(), normalize_type(t)))
                .collect();
            let sig = Signature {
                args,
                returns: normalize_type(c.returns),
            };
            (c.name.to_owned(), sig)
        })
        .collect()
}

/// The differences between src-tauri's command functions and the table, one line each.
fn signature_mismatches(lib_rs: &str) -> Vec<String> {
    let shell = command_functions(lib_rs);
    let table = table_signatures();
    let mut out = Vec::new();
    for (name, want) in &table {
        match shell.get(name) {
            None => out.push(format!(
                "{name}: no #[tauri::command] fn in src-tauri/src/lib.rs"
            )),
            Some(got) if got != want => out.push(format!(
                "{name}: src-tauri takes {got:?}, the table says {want:?}"
            )),
            Some(_) => {}
        }
    }
    for name in shell.keys().filter(|n| !table.contains_key(*n)) {
        out.push(format!(
            "{name}: a #[tauri::command] the table does not have"
        ));
    }
    out
}

#[test]
fn src_tauri_s_commands_take_and_return_what_the_table_says() {
    let mismatches = signature_mismatches(&read("src-tauri/src/lib.rs"));
    assert!(
        mismatches.is_empty(),
        "src-tauri/src/lib.rs differs from crates/voxseal-app/src/commands.rs:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn a_renamed_retyped_or_extra_argument_is_a_mismatch() {
    let lib = read("src-tauri/src/lib.rs");
    assert!(table::COMMANDS.len() > 20);
    assert_eq!(command_functions(&lib).len(), table::COMMANDS.len());
    for (from, to, what) in [
        (
            "code: String,\n    switch: bool",
            "link: String,\n    switch: bool",
            "preview_join",
        ),
        ("accept_failed: bool", "accept_anyway: bool", "accept_take"),
        ("index: usize", "index: u32", "go_to_prompt"),
        (
            "sample_id: String",
            "sample_id: String, force: bool",
            "retry_item",
        ),
        (
            "CommandResult<NoiseCheck>",
            "CommandResult<Level>",
            "check_noise",
        ),
    ] {
        assert!(lib.contains(from), "{from:?} is no longer in lib.rs");
        let changed = lib.replacen(from, to, 1);
        let mismatches = signature_mismatches(&changed);
        assert_eq!(mismatches.len(), 1, "{from:?} -> {to:?}: {mismatches:?}");
        assert!(mismatches[0].starts_with(what), "{mismatches:?}");
    }
    assert_eq!(
        normalize_type("Option< update::UpdateOffer >"),
        "Option<UpdateOffer>"
    );
}

#[test]
fn the_handlers_the_capability_and_the_front_end_name_exactly_the_table_s_commands() {
    let commands: BTreeSet<String> = table::COMMANDS.iter().map(|c| c.name.to_owned()).collect();
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

/// Tauri's name for a command argument: the Rust parameter's name in camelCase, converted as
/// Tauri's macros convert it.
fn camel_case(snake: &str) -> String {
    heck::ToLowerCamelCase::to_lower_camel_case(snake)
}

/// The rows of the "## Commands" table of docs/app-ipc.md: command -> the argument names it
/// gives (each written as `` `name: type` ``).
fn documented_commands(doc: &str) -> BTreeMap<String, Vec<String>> {
    let section = between(doc, "## Commands\n\n", "\n\n");
    (section.lines())
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let args = (cells.get(2)?.split('`').skip(1).step_by(2))
                .filter_map(|code| {
                    let (arg, _) = code.split_once(": ")?;
                    arg.chars()
                        .all(|c| c.is_ascii_alphanumeric())
                        .then(|| arg.to_owned())
                })
                .collect();
            Some((name.to_owned(), args))
        })
        .collect()
}

#[test]
fn docs_app_ipc_md_lists_the_table_s_commands_with_their_arguments() {
    let documented = documented_commands(&read("docs/app-ipc.md"));
    let table: BTreeMap<String, Vec<String>> = (table::COMMANDS.iter())
        .map(|c| {
            let args = c.args.iter().map(|(n, _)| camel_case(n)).collect();
            (c.name.to_owned(), args)
        })
        .collect();
    assert_eq!(documented, table, "the commands table of docs/app-ipc.md");
    let renamed = read("docs/app-ipc.md").replacen("`flagReason: string", "`reason: string", 1);
    assert_ne!(
        documented_commands(&renamed),
        table,
        "a renamed argument is seen"
    );
}
