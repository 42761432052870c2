//! The UI's TypeScript types, generated from the Rust IPC types (ts-rs), and the test that keeps
//! the checked-in `ui/src/lib/bindings.ts` equal to what the Rust types produce.
//!
//! The types this crate defines (`types.rs`, `error.rs`) derive `TS` in test builds. The few
//! values the shell sends straight from voxseal-core and voxseal-cloud (a meter level, an input
//! device, upload progress, the status and verdict enums) are described here by mirrors, and a
//! test serializes each mirror next to the real value: same JSON, or the test fails.
//!
//! After changing an IPC type: `VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings`.

use serde::Serialize;
use ts_rs::{Config, TS};

use crate::error::{AppError, ErrorKind};
use crate::types::*;

/// A meter reading (voxseal-core `Level`).
#[derive(Serialize, TS)]
#[ts(rename = "Level")]
struct LevelTs {
    peak_dbfs: f32,
    rms_dbfs: f32,
    clipped: bool,
    elapsed_s: f32,
}

/// An input device (voxseal-core `DeviceInfo`).
#[derive(Serialize, TS)]
#[ts(rename = "DeviceInfo")]
struct DeviceInfoTs {
    name: String,
    id: Option<String>,
    is_default: bool,
    sample_rate: u32,
    channels: u16,
    format: String,
}

/// Upload progress (voxseal-cloud `UploadProgress`).
#[derive(Serialize, TS)]
#[ts(rename = "UploadProgress")]
struct UploadProgressTs {
    bytes_done: u64,
    bytes_total: u64,
    items_done: usize,
    items_total: usize,
    sample_id: Option<String>,
    item_bytes_done: u64,
    item_bytes_total: u64,
}

/// A prompt's status (voxseal-core `PromptStatus`).
#[derive(Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "PromptStatus")]
enum PromptStatusTs {
    Todo,
    Accepted,
    Skipped,
    Flagged,
}

/// An outbox item's status (voxseal-core `ItemStatus`).
#[derive(Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "ItemStatus")]
enum ItemStatusTs {
    Sealed,
    Uploading,
    Uploaded,
    Failed,
}

/// A check's verdict (voxseal-core `Verdict`).
#[derive(Serialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(rename = "Verdict")]
enum VerdictTs {
    Pass,
    Warn,
    Fail,
}

/// The declarations of every IPC type, in the order of docs/app-ipc.md.
fn declarations(cfg: &Config) -> Vec<String> {
    vec![
        ErrorKind::decl(cfg),
        AppError::decl(cfg),
        PromptView::decl(cfg),
        PromptStatusTs::decl(cfg),
        PromptProgressView::decl(cfg),
        ProjectView::decl(cfg),
        JoinPreview::decl(cfg),
        ProjectNotice::decl(cfg),
        Mode::decl(cfg),
        AppState::decl(cfg),
        DeviceInfoTs::decl(cfg),
        LevelTs::decl(cfg),
        NoiseCheck::decl(cfg),
        VerdictTs::decl(cfg),
        CheckView::decl(cfg),
        QualityView::decl(cfg),
        Interruption::decl(cfg),
        TakeReview::decl(cfg),
        ItemStatusTs::decl(cfg),
        QueueItem::decl(cfg),
        QueueState::decl(cfg),
        UploadProgressTs::decl(cfg),
        ActivityEntry::decl(cfg),
        UpdateOffer::decl(cfg),
        DownloadProgress::decl(cfg),
    ]
}

const HEADER: &str = "\
// Generated from the Rust IPC types (crates/voxseal-app/src/types.rs and error.rs; the mirrors
// of voxseal-core's and voxseal-cloud's values in src/bindings.rs) by ts-rs. Do not edit: change
// the Rust types, then run
//   VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings
// `cargo test -p voxseal-app` fails while this file differs from what the Rust types produce.
";

/// The whole bindings file. u64 values (serials, sequence numbers, byte counts) are JSON numbers
/// well below 2^53: `number`, not `bigint`.
fn bindings() -> String {
    let cfg = Config::default().with_large_int("number");
    let mut out = HEADER.to_owned();
    for decl in declarations(&cfg) {
        out.push('\n');
        out.push_str("export ");
        out.push_str(&decl);
        out.push('\n');
    }
    out
}

/// The checked-in file, as the crate was compiled (so the test needs no file access at run
/// time: it also runs as a Windows executable under Wine).
const CHECKED_IN: &str = include_str!("../../../ui/src/lib/bindings.ts");

#[test]
fn bindings_ts_is_what_the_rust_types_produce() {
    let generated = bindings();
    if std::env::var_os("VOXSEAL_WRITE_BINDINGS").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/src/lib/bindings.ts");
        std::fs::write(path, &generated).expect("write ui/src/lib/bindings.ts");
        return;
    }
    if generated != CHECKED_IN {
        let line = generated
            .lines()
            .zip(CHECKED_IN.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "its length".to_owned(), |n| format!("line {}", n + 1));
        panic!(
            "ui/src/lib/bindings.ts differs from the Rust IPC types at {line}: run \
             VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings, and check the UI \
             (npm --prefix ui run check)"
        );
    }
}

#[test]
fn the_mirrors_serialize_as_the_real_values() {
    use voxseal_core::capture::audio::{DeviceInfo, Level};
    use voxseal_core::dsp::quality::Verdict;
    use voxseal_core::store::outbox::ItemStatus;
    use voxseal_core::store::progress::PromptStatus;

    let level = Level {
        peak_dbfs: -3.5,
        rms_dbfs: -20.25,
        clipped: true,
        elapsed_s: 1.5,
    };
    let mirror = LevelTs {
        peak_dbfs: -3.5,
        rms_dbfs: -20.25,
        clipped: true,
        elapsed_s: 1.5,
    };
    assert_eq!(json(&level), json(&mirror));

    let device = DeviceInfo {
        name: "mic".into(),
        id: Some("id".into()),
        is_default: true,
        sample_rate: 48_000,
        channels: 2,
        format: "f32".into(),
    };
    let mirror = DeviceInfoTs {
        name: "mic".into(),
        id: Some("id".into()),
        is_default: true,
        sample_rate: 48_000,
        channels: 2,
        format: "f32".into(),
    };
    assert_eq!(json(&device), json(&mirror));

    let progress = voxseal_cloud::uploader::UploadProgress {
        bytes_done: 1,
        bytes_total: 2,
        items_done: 3,
        items_total: 4,
        sample_id: Some("s".into()),
        item_bytes_done: 5,
        item_bytes_total: 6,
    };
    let mirror = UploadProgressTs {
        bytes_done: 1,
        bytes_total: 2,
        items_done: 3,
        items_total: 4,
        sample_id: Some("s".into()),
        item_bytes_done: 5,
        item_bytes_total: 6,
    };
    assert_eq!(json(&progress), json(&mirror));

    // Exhaustive matches: a variant added in core does not compile here until mirrored.
    for s in [
        PromptStatus::Todo,
        PromptStatus::Accepted,
        PromptStatus::Skipped,
        PromptStatus::Flagged,
    ] {
        let m = match s {
            PromptStatus::Todo => PromptStatusTs::Todo,
            PromptStatus::Accepted => PromptStatusTs::Accepted,
            PromptStatus::Skipped => PromptStatusTs::Skipped,
            PromptStatus::Flagged => PromptStatusTs::Flagged,
        };
        assert_eq!(json(&s), json(&m));
    }
    for s in [
        ItemStatus::Sealed,
        ItemStatus::Uploading,
        ItemStatus::Uploaded,
        ItemStatus::Failed,
    ] {
        let m = match s {
            ItemStatus::Sealed => ItemStatusTs::Sealed,
            ItemStatus::Uploading => ItemStatusTs::Uploading,
            ItemStatus::Uploaded => ItemStatusTs::Uploaded,
            ItemStatus::Failed => ItemStatusTs::Failed,
        };
        assert_eq!(json(&s), json(&m));
    }
    for v in [Verdict::Pass, Verdict::Warn, Verdict::Fail] {
        let m = match v {
            Verdict::Pass => VerdictTs::Pass,
            Verdict::Warn => VerdictTs::Warn,
            Verdict::Fail => VerdictTs::Fail,
        };
        assert_eq!(json(&v), json(&m));
    }
}

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes")
}
