//! Generates the Tauri context and the app's command permissions.
//!
//! Declaring the commands of voxseal-app's command table (`crates/voxseal-app/src/commands.rs`)
//! makes Tauri generate `allow-<command>` permissions and refuse any command the window's
//! capability does not grant.

/// The IPC command table, written once in voxseal-app (`Command`, `COMMANDS`).
#[allow(dead_code)]
mod table {
    include!("../crates/voxseal-app/src/commands.rs");
}

/// Release builds must pin the project lead's public key (the `pinned` feature: the app then
/// verifies every project config against it and nothing else), or be the demo app
/// (`VOXSEAL_LOCAL_ONLY=1` with the `demo` feature). Demo and production never mix.
fn check_pinned_lead_key() {
    println!("cargo:rerun-if-env-changed=VOXSEAL_LEAD_PUBKEY");
    println!("cargo:rerun-if-env-changed=VOXSEAL_LOCAL_ONLY");
    let key = std::env::var("VOXSEAL_LEAD_PUBKEY").unwrap_or_default();
    for k in key.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if !(k.starts_with("RW") && k.len() == 56) {
            panic!(
                "VOXSEAL_LEAD_PUBKEY: {k:?} is not a minisign public key (the base64 line of lead.pub)"
            );
        }
    }
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let local_only = std::env::var("VOXSEAL_LOCAL_ONLY").as_deref() == Ok("1");
    let demo = std::env::var_os("CARGO_FEATURE_DEMO").is_some();
    let pinned = std::env::var_os("CARGO_FEATURE_PINNED").is_some();
    if pinned && demo {
        panic!(
            "a build with a pinned lead key (feature `pinned`) must not contain the demo stack: \
             build with --no-default-features --features pinned (scripts/dist.sh does); demo and production never mix"
        );
    }
    if pinned && key.trim().is_empty() {
        panic!(
            "the `pinned` feature needs VOXSEAL_LEAD_PUBKEY: the base64 line of the lead's lead.pub"
        );
    }
    if release && !pinned && !(local_only && demo) {
        panic!(
            "release builds are either for a project (--no-default-features --features pinned, with \
             VOXSEAL_LEAD_PUBKEY: the base64 line of lead.pub from `voxseal project init`) or the demo app \
             (VOXSEAL_LOCAL_ONLY=1, default features)"
        );
    }
}

/// The app embeds the built front end (`frontendDist` = ../ui/dist). Without it Tauri's macro
/// fails with a bare path error; say how to build it instead.
fn check_front_end_built() {
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    // The directory cargo runs this script for, read when it runs: a path compiled into the
    // script (`env!`) goes stale when the same target directory builds another checkout.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let index = std::path::Path::new(&dir).join("../ui/dist/index.html");
    if !index.is_file() {
        panic!(
            "the front end is not built (no ui/dist/index.html): run `npm --prefix ui ci && npm --prefix ui run build` \
             (scripts/run.sh, scripts/test.sh and .ci/run do this for you)"
        );
    }
}

/// The `updater` feature pins the updater's public key (`tauri signer generate`'s `.pub`, as is).
fn check_pinned_updater_key() {
    println!("cargo:rerun-if-env-changed=VOXSEAL_UPDATER_PUBKEY");
    println!("cargo:rerun-if-env-changed=VOXSEAL_UPDATE_URL");
    if std::env::var_os("CARGO_FEATURE_UPDATER").is_none() {
        return;
    }
    let key = std::env::var("VOXSEAL_UPDATER_PUBKEY").unwrap_or_default();
    let key = key.trim();
    if key.len() < 40
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    {
        panic!(
            "the `updater` feature (on in `pinned` builds) needs VOXSEAL_UPDATER_PUBKEY: the contents \
             of the .pub file `tauri signer generate` wrote (one base64 line)"
        );
    }
}

fn main() {
    println!("cargo:rerun-if-changed=../crates/voxseal-app/src/commands.rs");
    let commands: Vec<&'static str> = table::COMMANDS.iter().map(|c| c.name).collect();
    check_pinned_lead_key();
    check_pinned_updater_key();
    check_front_end_built();
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(commands.leak())),
    )
    .expect("tauri build script failed");
}
