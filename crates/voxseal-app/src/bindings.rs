//! The UI's TypeScript types, generated from the Rust IPC types (ts-rs), and the test that keeps
//! the checked-in `ui/src/lib/bindings.ts` equal to what the Rust types produce.
//!
//! The types this crate defines (`types.rs`, `error.rs`) derive `TS` in test builds. The few
//! values the shell sends straight from voxseal-core and voxseal-cloud (a meter level, an input
//! device, upload progress, the status and verdict enums) are described here by mirrors, and a
//! test serializes each mirror next to the real value: same JSON, or the test fails.
//!
//! The commands' bindings (`ui/src/lib/commands.ts`: each command's argument names and types and
//! its result) are generated the same way from the command table in `src/commands.rs`.
//!
//! After changing an IPC type or command: `VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings`.

use std::marker::PhantomData;

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
    waiting_for_network: bool,
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

/// A command's TypeScript types, as `ui/src/lib/commands.ts` declares them.
struct TsCommand {
    name: &'static str,
    doc: &'static str,
    /// (the name `invoke` takes, i.e. camelCase, and the TypeScript type)
    args: Vec<(String, String)>,
    returns: String,
}

/// How a type of the command table reads in TypeScript. A `Channel<T>` argument is a callback on
/// the UI's side (backend.ts wraps it into a Tauri channel).
trait IpcType {
    fn ts(cfg: &Config) -> String;
}

/// The Tauri channel of the command table (`tauri::ipc::Channel<T>`).
struct Channel<T>(PhantomData<T>);

impl<T: IpcType> IpcType for Channel<T> {
    fn ts(cfg: &Config) -> String {
        format!("(value: {}) => void", T::ts(cfg))
    }
}
impl<T: IpcType> IpcType for Option<T> {
    fn ts(cfg: &Config) -> String {
        format!("{} | null", T::ts(cfg))
    }
}
impl<T: IpcType> IpcType for Vec<T> {
    fn ts(cfg: &Config) -> String {
        format!("{}[]", T::ts(cfg))
    }
}

macro_rules! ipc_type {
    ($($t:ty => $ts:expr),* $(,)?) => {
        $(impl IpcType for $t {
            fn ts(_: &Config) -> String {
                $ts.to_owned()
            }
        })*
    };
}
ipc_type!(String => "string", bool => "boolean", usize => "number", () => "void");

/// The IPC types a command takes or returns by name (declared in bindings.ts).
macro_rules! named_ipc_types {
    ($($t:ty),* $(,)?) => {
        $(impl IpcType for $t {
            fn ts(cfg: &Config) -> String {
                <$t as TS>::name(cfg)
            }
        })*
        /// The names `commands.ts` may import from bindings.ts.
        fn named_types(cfg: &Config) -> Vec<String> {
            vec![$(<$t as TS>::name(cfg)),*]
        }
    };
}
named_ipc_types!(
    AppState,
    JoinPreview,
    DeviceInfoTs,
    LevelTs,
    NoiseCheck,
    TakeReview,
    QueueState,
    UploadProgressTs,
    ActivityEntry,
    UpdateOffer,
    DownloadProgress,
);

/// The command table's types resolve here: core's and cloud's values are their mirrors.
mod table_types {
    pub(super) use super::{
        Channel, DeviceInfoTs as DeviceInfo, LevelTs as Level, UploadProgressTs as UploadProgress,
    };
    pub(super) use crate::types::{
        ActivityEntry, AppState, DownloadProgress, JoinPreview, NoiseCheck, QueueState, TakeReview,
        UpdateOffer,
    };
}

/// Turns the command table into `TsCommand`s.
macro_rules! ts_commands {
    ($( $(#[doc = $doc:literal])* $name:ident( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        fn ts_commands(cfg: &Config) -> Vec<TsCommand> {
            #[allow(unused_imports)]
            use table_types::*;
            vec![$(TsCommand {
                name: stringify!($name),
                doc: concat!($($doc),*),
                args: vec![$((camel_case(stringify!($arg)), <$ty as IpcType>::ts(cfg))),*],
                returns: <$ret as IpcType>::ts(cfg),
            }),*]
        }
    };
}
with_commands!(ts_commands);

/// Tauri's name for a command argument: the Rust parameter's name in camelCase, converted as
/// Tauri's macros convert it.
fn camel_case(snake: &str) -> String {
    heck::ToLowerCamelCase::to_lower_camel_case(snake)
}

const COMMANDS_HEADER: &str = "\
// Generated from the IPC command table (crates/voxseal-app/src/commands.rs; the types are those of
// bindings.ts). Do not edit: change the table, then run
//   VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings
// `cargo test -p voxseal-app` fails while this file differs from what the table produces, and
// crates/voxseal-testkit/tests/ipc_contract.rs fails while src-tauri's commands take other
// arguments than the table says.
";

/// The whole commands file: the argument tuple and the result of each command (backend.ts's
/// `call` takes them), and the argument names at run time (a channel argument is a callback).
fn commands_ts() -> String {
    let cfg = Config::default().with_large_int("number");
    let commands = ts_commands(&cfg);
    let mut args = String::new();
    let mut results = String::new();
    let mut names = String::new();
    for c in &commands {
        let doc = c.doc.trim();
        args.push_str(&format!("  /** {doc} */\n  {}: [", c.name));
        if !c.args.is_empty() {
            let fields: Vec<String> = c.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
            args.push_str(&format!("args: {{ {} }}", fields.join("; ")));
        }
        args.push_str("];\n");
        results.push_str(&format!("  {}: {};\n", c.name, c.returns));
        let quoted: Vec<String> = c.args.iter().map(|(n, _)| format!("'{n}'")).collect();
        names.push_str(&format!("  {}: [{}],\n", c.name, quoted.join(", ")));
    }
    let body = format!(
        "/** Each command's arguments, as backend.ts's `call` takes them: one object whose keys are \
         the Rust parameters' names in camelCase (Tauri's convention), or nothing. */\n\
         export interface CommandArgs {{\n{args}}}\n\n\
         /** What each command resolves to. */\n\
         export interface CommandResults {{\n{results}}}\n\n\
         /** Every command, in the table's order, with its argument names. */\n\
         export const COMMAND_ARGS = {{\n{names}}} as const;\n\n\
         export type Command = keyof typeof COMMAND_ARGS;\n"
    );
    let mut imports: Vec<String> = named_types(&cfg)
        .into_iter()
        .filter(|n| body.split(|c: char| !c.is_alphanumeric()).any(|w| w == n))
        .collect();
    imports.sort();
    format!(
        "{COMMANDS_HEADER}import type {{ {} }} from './bindings';\n\n{body}",
        imports.join(", ")
    )
}

/// The checked-in files, as the crate was compiled (so the test needs no file access at run
/// time: it also runs as a Windows executable under Wine).
const CHECKED_IN: &str = include_str!("../../../ui/src/lib/bindings.ts");
const CHECKED_IN_COMMANDS: &str = include_str!("../../../ui/src/lib/commands.ts");

/// Fails while `checked_in` differs from `generated`; writes it with VOXSEAL_WRITE_BINDINGS.
fn check_generated(file: &str, generated: &str, checked_in: &str) {
    if std::env::var_os("VOXSEAL_WRITE_BINDINGS").is_some() {
        let path = format!("{}/../../ui/src/lib/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, generated).unwrap_or_else(|e| panic!("write {path}: {e}"));
        return;
    }
    if generated != checked_in {
        let line = generated
            .lines()
            .zip(checked_in.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "its length".to_owned(), |n| format!("line {}", n + 1));
        panic!(
            "ui/src/lib/{file} differs from what the Rust IPC types and commands produce at {line}: \
             run VOXSEAL_WRITE_BINDINGS=1 cargo test -p voxseal-app --lib bindings, and check the UI \
             (npm --prefix ui run check)"
        );
    }
}

#[test]
fn bindings_ts_is_what_the_rust_types_produce() {
    check_generated("bindings.ts", &bindings(), CHECKED_IN);
}

#[test]
fn commands_ts_is_what_the_command_table_produces() {
    check_generated("commands.ts", &commands_ts(), CHECKED_IN_COMMANDS);
}

#[test]
fn argument_names_are_camel_case_as_tauri_expects_them() {
    assert_eq!(camel_case("flag_reason"), "flagReason");
    assert_eq!(camel_case("on_level"), "onLevel");
    assert_eq!(camel_case("switch"), "switch");
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
        waiting_for_network: true,
    };
    let mirror = UploadProgressTs {
        bytes_done: 1,
        bytes_total: 2,
        items_done: 3,
        items_total: 4,
        sample_id: Some("s".into()),
        item_bytes_done: 5,
        item_bytes_total: 6,
        waiting_for_network: true,
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
