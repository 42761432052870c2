//! Keeps docs/reliability.md true. The document's tables name, for each fault and bad-input class,
//! the test file and test functions that try it and the number of cases; this test checks that:
//! - every test file and function named in a table row exists;
//! - a row's case count equals the `CASES_*` constant it names (the tests assert they ran exactly
//!   that many cases), so adding a case without updating the document fails here;
//! - every `CASES_*` constant and every test function of the reliability test files appears in the
//!   document, so a new class cannot go unreported;
//! - every parameter quoted in the form "NAME = value" (load sizes, bounds) equals the constant of
//!   that name in the tests;
//! - every fault-injection point the crash tests use is documented in `voxseal_core::fault` and
//!   in the document.

use std::collections::BTreeMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    voxseal_testkit::repo_root()
}

/// The test files whose classes the document reports.
const SOURCES: [&str; 8] = [
    "crates/voxseal-cli/tests/crash.rs",
    "crates/voxseal-cli/tests/bad_input.rs",
    "tests/reliability/tests/disk_full.rs",
    "tests/reliability/tests/device_lost.rs",
    "tests/reliability/tests/network.rs",
    "tests/reliability/tests/load.rs",
    "tests/reliability/tests/soak.rs",
    "tests/reliability/tests/report.rs",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `` `...` `` spans of a line.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Every `const NAME: T = VALUE;` in `text`, VALUE without `_` separators.
fn consts(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("const ") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once(':') else {
            continue;
        };
        let Some((_, value)) = rest.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_end_matches(';').replace('_', "");
        out.insert(name.trim().to_owned(), value);
    }
    out
}

/// Names of the test functions in `text` (`#[test]`, `#[tokio::test(..)]`, also ignored ones).
fn test_fns(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut armed = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#[test]") || t.starts_with("#[tokio::test") {
            armed = true;
        } else if armed && let Some(rest) = t.strip_prefix("fn ").or(t.strip_prefix("async fn ")) {
            out.push(rest.split('(').next().unwrap().to_owned());
            armed = false;
        }
    }
    out
}

#[test]
fn docs_reliability_md_matches_the_tests() {
    let doc = read("docs/reliability.md");
    let sources: BTreeMap<&str, String> = SOURCES.iter().map(|p| (*p, read(p))).collect();
    let all_consts: BTreeMap<String, String> = sources.values().flat_map(|t| consts(t)).collect();
    let mut problems = Vec::new();
    let mut rows = 0;

    for line in doc.lines().filter(|l| l.starts_with('|')) {
        // | class | what | cases | outcome | test files and functions |
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(last) = cells.iter().rev().find(|c| !c.is_empty()) else {
            continue;
        };
        let mut file: Option<(&str, Option<String>)> = None;
        for span in code_spans(last) {
            if span.ends_with(".rs") {
                rows += 1;
                let text = std::fs::read_to_string(root().join(span)).ok();
                if text.is_none() {
                    problems.push(format!("{span}: no such file"));
                }
                file = Some((span, text));
            } else if span
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && span.contains('_')
            {
                match &file {
                    Some((path, Some(text))) if !test_fns(text).iter().any(|n| n == span) => {
                        problems.push(format!("{path}: no test fn {span}"));
                    }
                    None => problems.push(format!("{span}: which file?")),
                    _ => {}
                }
            }
        }
        for c in code_spans(line)
            .into_iter()
            .filter(|s| s.starts_with("CASES_"))
        {
            let Some((path, Some(text))) = &file else {
                problems.push(format!("{c}: the row names no test file"));
                continue;
            };
            let Some(value) = consts(text).get(c).cloned() else {
                problems.push(format!("{path}: no const {c}"));
                continue;
            };
            let cell = cells.get(3).copied().unwrap_or_default();
            let n: String = cell.chars().take_while(char::is_ascii_digit).collect();
            if n != value {
                problems.push(format!("{c} = {value} but the document says {cell:?}"));
            }
        }
    }
    assert!(rows >= 20, "only {rows} table rows with a test file");

    for (path, text) in &sources {
        for (name, _) in consts(text).iter().filter(|(n, _)| n.starts_with("CASES_")) {
            if !doc.contains(&format!("`{name}`")) {
                problems.push(format!("{name} ({path}) is not in the document"));
            }
        }
        for f in test_fns(text) {
            if !doc.contains(&format!("`{f}`")) {
                problems.push(format!("test {f} ({path}) is not in the document"));
            }
        }
    }

    for span in doc.lines().flat_map(code_spans) {
        let Some((name, value)) = span.split_once(" = ") else {
            continue;
        };
        if !name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        {
            continue;
        }
        match all_consts.get(name) {
            Some(v) if *v == value.replace('_', "") => {}
            Some(v) => problems.push(format!(
                "{name} is {v} in the tests, {value} in the document"
            )),
            None => problems.push(format!("no const {name} in the tests")),
        }
    }

    // Fault points: each one documented in `voxseal_core::fault` is placed in the code, used by
    // the crash tests, and listed here.
    let fault = read("crates/voxseal-core/src/fault.rs");
    let points: Vec<&str> = fault
        .lines()
        .filter_map(|l| l.strip_prefix("//! | `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(points.len() >= 10, "{points:?}");
    let code: String = [
        "crates/voxseal-core/src/capture/spool.rs",
        "crates/voxseal-core/src/sealing/seal.rs",
        "crates/voxseal-core/src/store/take.rs",
        "crates/voxseal-core/src/store/audit.rs",
        "crates/voxseal-cloud/src/uploader/mod.rs",
        "crates/voxseal-cloud/src/uploader/object.rs",
        "crates/voxseal-cloud/src/uploader/multipart.rs",
    ]
    .iter()
    .map(|p| read(p))
    .collect();
    let crash = &sources["crates/voxseal-cli/tests/crash.rs"];
    for point in points {
        if !code.contains(&format!("(\"{point}\")")) {
            problems.push(format!("fault point {point} is not placed in the code"));
        }
        if !crash.contains(&format!("\"{point}\"")) && !crash.contains(&format!("\"{point}:")) {
            problems.push(format!("fault point {point} is not used by crash.rs"));
        }
        if !doc.contains(&format!("`{point}`")) {
            problems.push(format!("fault point {point} is not in the document"));
        }
    }

    // The fuzzing report is linked once it exists.
    if root().join("docs/fuzzing.md").exists() && !doc.contains("fuzzing.md") {
        problems.push("docs/fuzzing.md exists but is not linked".into());
    }

    assert!(
        problems.is_empty(),
        "docs/reliability.md is out of date:\n- {}",
        problems.join("\n- ")
    );
}
