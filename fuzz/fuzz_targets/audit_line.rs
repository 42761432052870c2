//! The audit log: `verify_reader` over arbitrary bytes, then `AuditLog::append` after that
//! content on a temp file.
//!
//! Raw mode: the input is the log file. Structured mode: lines with correct SHA-256 hashes over
//! fuzzer-chosen fields (seq, prev, event, details, time, torn tail, byte flips, raw lines), so
//! the fuzzer gets past the per-line hash to the chain and append logic.
//!
//! Checked: `verify_reader` and `AuditLog::append` never panic; an append either fails with
//! `Damaged` and leaves the file byte for byte as it was, or succeeds, and then an intact log
//! stays intact with the new entry last (after an `audit.recovered` entry if a torn tail was cut),
//! and a damaged log is still reported damaged at the same line (an append never hides damage).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sha2::{Digest, Sha256};
use voxseal_core::store::audit::{AuditEntry, AuditError, AuditLog, LogEvent, verify, verify_reader};
use voxseal_fuzz::encode::{AuditLineSpec, Input};

/// The event the target appends.
struct Appended;

impl LogEvent for Appended {
    fn to_line_parts(&self) -> (String, serde_json::Value) {
        ("fuzz.appended".into(), json!({ "n": 1 }))
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn path() -> &'static std::path::Path {
    static P: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    &P.get_or_init(|| {
        let d = voxseal_fuzz::scratch_dir();
        let p = d.path().join("audit.log");
        (d, p)
    })
    .1
}

/// Builds a log from line specs, each line hashed as `AuditLog` hashes its own lines.
fn build(inp: &mut Input<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev_hash = GENESIS.to_owned();
    let mut prev_seq = 0u64;
    let mut n = 0u64;
    while !inp.is_empty() && out.len() < 64 * 1024 {
        let spec = AuditLineSpec::decode(inp);
        if spec.flags & AuditLineSpec::RAW != 0 {
            out.extend_from_slice(&spec.raw);
            out.push(b'\n');
            continue;
        }
        n += 1;
        let seq = if spec.flags & AuditLineSpec::EXPLICIT_SEQ != 0 {
            spec.seq
        } else {
            prev_seq.wrapping_add(1)
        };
        let prev = if spec.flags & AuditLineSpec::WRONG_PREV != 0 {
            hex::encode(Sha256::digest([spec.wrong_prev]))
        } else {
            prev_hash.clone()
        };
        let details = if spec.flags & AuditLineSpec::DETAILS != 0 {
            serde_json::from_slice(&spec.details)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&spec.details)))
        } else {
            json!({ "i": n })
        };
        let time = if spec.flags & AuditLineSpec::TIME != 0 {
            String::from_utf8_lossy(&spec.time).into_owned()
        } else {
            "2026-01-01T00:00:00.000000Z".to_owned()
        };
        let entry = AuditEntry {
            seq,
            time,
            event: String::from_utf8_lossy(&spec.event).into_owned(),
            details,
            prev,
        };
        let body = serde_json::to_string(&entry).expect("entries serialize");
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let mut line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]).into_bytes();
        if spec.flags & AuditLineSpec::FLIP != 0 {
            let at = spec.flip_at as usize % line.len();
            line[at] ^= 1;
        }
        out.extend_from_slice(&line);
        if spec.flags & AuditLineSpec::TORN != 0 {
            break;
        }
        out.push(b'\n');
        prev_seq = seq;
        prev_hash = hash;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let bytes = if inp.u8() % 2 == 0 {
        inp.rest().to_vec()
    } else {
        build(&mut inp)
    };
    let before = verify_reader(&bytes[..]).expect("reading from memory cannot fail");
    if let Some(bad) = &before.first_bad {
        assert!(bad.line >= 1);
        assert!(bad.line as usize == before.entries.len() + 1);
    }

    let p = path();
    voxseal_fuzz::put(p, &bytes);
    let log = AuditLog::new(p);
    let result = log.append(&Appended);
    let after_bytes = std::fs::read(p).expect("read back");
    let after = verify(p).expect("read back");
    match result {
        Ok(seq) => {
            let last = after.entries.last();
            if before.is_intact() {
                assert!(
                    after.is_intact(),
                    "append broke an intact log: {:?}",
                    after.first_bad
                );
                let recovered = u64::from(before.torn_bytes > 0);
                assert_eq!(
                    after.entries.len(),
                    before.entries.len() + 1 + recovered as usize
                );
                let last = last.expect("the new entry");
                assert_eq!((last.seq, last.event.as_str()), (seq, "fuzz.appended"));
                if recovered == 1 {
                    let rec = &after.entries[after.entries.len() - 2];
                    assert_eq!(rec.event, "audit.recovered");
                }
            } else {
                assert_eq!(
                    after.first_bad, before.first_bad,
                    "append changed or hid the damage"
                );
            }
        }
        Err(AuditError::Damaged { .. }) => {
            assert!(after_bytes == bytes, "a refused append changed the file");
            assert!(!before.is_intact(), "append refused a log that verifies");
        }
        Err(e) => panic!("append failed with an unexpected error: {e}"),
    }
});
