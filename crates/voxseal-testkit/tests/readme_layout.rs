//! The README's "How it fits together" table matches the tree: every top-level folder, every
//! crate, every test folder and every stage folder of `voxseal-core` has a row, and every row
//! names paths that exist.

use std::collections::BTreeSet;
use std::path::Path;

/// The backticked paths in the first column of the README's layout table.
fn rows(readme: &str) -> BTreeSet<String> {
    let table = readme
        .split("## How it fits together")
        .nth(1)
        .expect("the README has a \"How it fits together\" section");
    let mut paths = BTreeSet::new();
    for line in table.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let first = line.split('|').nth(1).unwrap_or_default();
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                paths.insert(part.trim_end_matches('/').to_owned());
            }
        }
    }
    paths
}

/// The folders under `dir` (relative to the repository), without build and tool output.
fn folders(root: &Path, dir: &str) -> Vec<String> {
    let skip = ["target", "node_modules", ".git", ".venv", "dist", "gen"];
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !skip.contains(&name.as_str()) && !name.starts_with("__") {
            out.push(if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            });
        }
    }
    out
}

#[test]
fn the_readme_layout_table_names_every_folder_and_only_real_ones() {
    let root = voxseal_testkit::repo_root();
    let listed = rows(&std::fs::read_to_string(root.join("README.md")).unwrap());
    // `crates` and `tests` are containers: each folder in them has its own row.
    let mut wanted: Vec<String> = (folders(&root, "").into_iter())
        .filter(|f| f != "crates" && f != "tests")
        .collect();
    for dir in ["crates", "tests", "crates/voxseal-core/src"] {
        wanted.extend(folders(&root, dir));
    }
    let missing: Vec<&String> = wanted.iter().filter(|f| !listed.contains(*f)).collect();
    assert!(
        missing.is_empty(),
        "README layout table lacks rows for {missing:?}"
    );
    let absent: Vec<&String> = listed.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        absent.is_empty(),
        "README layout table names paths that do not exist: {absent:?}"
    );
}
