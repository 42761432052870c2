#!/usr/bin/env bash
# Runs every test: installs what the tests need (idempotent), starts the headless audio server,
# and runs the whole workspace's tests with the external tools required, not optional.
#
#   scripts/test.sh              all tests
#   scripts/test.sh -- <args>    extra arguments for `cargo test` (e.g. a test name filter)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=test
cd "$VOXSEAL_ROOT"

extra=()
if [[ ${1:-} == "--" ]]; then shift; extra=("$@"); fi

scripts/setup.sh --test
. scripts/env.sh
say "build cache: $CARGO_TARGET_DIR"

# Real audio through cpal: a private PulseAudio with a null sink whose monitor is the default source.
eval "$(scripts/pulse.sh)"

export VOXSEAL_REQUIRE_TOOLS=1   # age, the Python venv: missing means failure, not skip
export VOXSEAL_REQUIRE_PULSE=1   # the PulseAudio capture tests must run
export VOXSEAL_REQUIRE_E2E=1     # the desktop app's WebDriver test (tests/e2e) must run
export VOXSEAL_REQUIRE_NETNS=1   # the emulated-uplink tests (tests/uplink) must run (CI is root)
export RUST_BACKTRACE=1

# The front end's own tests (Vitest against scripted fixtures) and type checks.
build_ui
say "front end: svelte-check and vitest"
npm --prefix ui run check
npm --prefix ui test

# Ends a background job and everything it started (cargo and rustc are its grandchildren).
kill_tree() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
    kill "$1" 2>/dev/null || true
}

# The end-to-end tests drive the built binaries: the desktop app (with the built UI inside it),
# and the lead CLI and the broker on the production path (tests/e2e/tests/production.rs).
# The Windows build (the test suites of core, cloud, CLI, broker and app logic, with the installer's
# app and CLI in the same build: scripts/windows.sh) runs in the background at the lowest CPU
# priority: it takes the time the Linux steps below leave idle (real-time audio, WebDriver waits,
# single-threaded checks). Its checks run at the end.
if [[ ${#extra[@]} -eq 0 ]]; then
    scripts/windows.sh setup
    win_log="$(mktemp)"
    say "Windows: building in the background (nice 19; log: $win_log)"
    nice -n 19 scripts/windows.sh installer --build-only >"$win_log" 2>&1 &
    win_pid=$!
    trap 'kill_tree "$win_pid"' EXIT
fi

say "cargo build -p voxseal-cli"
cargo build -p voxseal-cli
# The release-style app of the production test: a lead key pinned, no demo. The key is made once
# and kept with the build cache (the pinned build's artifacts then stay cached too); its own
# feature set keeps those artifacts apart from the default build's.
e2e_lead="$CARGO_TARGET_DIR/e2e-lead"
if [[ ! -f $e2e_lead/keys/lead.key ]]; then
    rm -rf "$e2e_lead"
    printf 'e2e prompt\n' >"$CARGO_TARGET_DIR/e2e-lead-prompts.txt"
    printf 'e2e consent\n' >"$CARGO_TARGET_DIR/e2e-lead-consent.txt"
    "$CARGO_TARGET_DIR/debug/voxseal" project init "$e2e_lead" --name e2e-lead --no-password \
        --prompts "$CARGO_TARGET_DIR/e2e-lead-prompts.txt" --consent "$CARGO_TARGET_DIR/e2e-lead-consent.txt" >/dev/null
fi
# Its updater key (the test signs updates with it, and with another key that must be refused).
e2e_updater="$CARGO_TARGET_DIR/e2e-updater"
if [[ ! -f $e2e_updater/updater.key.pub ]]; then
    rm -rf "$e2e_updater" && mkdir -p "$e2e_updater"
    npx --yes @tauri-apps/cli@2.12.5 signer generate --ci -p e2e-updater -w "$e2e_updater/updater.key" >/dev/null
fi
say "cargo build -p voxseal-desktop --no-default-features --features pinned (the production test's app)"
VOXSEAL_LEAD_PUBKEY="$(grep -v '^untrusted comment' "$e2e_lead/lead.pub" | head -1)" \
    VOXSEAL_UPDATER_PUBKEY="$(cat "$e2e_updater/updater.key.pub")" \
    cargo build -p voxseal-desktop --no-default-features --features pinned
mkdir -p "$CARGO_TARGET_DIR/e2e"
cp "$CARGO_TARGET_DIR/debug/voxseal-desktop" "$CARGO_TARGET_DIR/e2e/voxseal-desktop-pinned"
say "cargo build -p voxseal-desktop -p voxseal-broker"
cargo build -p voxseal-desktop -p voxseal-broker

say "cargo test --workspace"
cargo test --workspace "${extra[@]}"

if [[ ${#extra[@]} -eq 0 ]]; then
    # The data team's Python package (python/README.md): its wheel, installed into the test venv,
    # tested against moto with the CLI built above, and a local Ray instance.
    say "Python package: build the wheel, install it, pytest python/tests"
    wheels="$(mktemp -d)"
    .venv/bin/python -m pip wheel --quiet --no-deps --no-build-isolation -w "$wheels" python/
    .venv/bin/python -m pip install --quiet --no-deps --force-reinstall "$wheels"/voxseal-*.whl
    .venv/torch/bin/python -m pip install --quiet --no-deps --force-reinstall "$wheels"/voxseal-*.whl
    rm -rf "$wheels"
    (cd python/tests && PYTHONDONTWRITEBYTECODE=1 VOXSEAL_BIN="$CARGO_TARGET_DIR/debug/voxseal" \
        ../../.venv/bin/python -m pytest -q -p no:cacheprovider .)
fi

if [[ ${#extra[@]} -eq 0 ]]; then
    # The 5-minute real-time recording soak (docs/reliability.md) needs little CPU: it records
    # while the checks below keep both cores busy, which also proves zero drops on a busy machine.
    soak_log="$(mktemp)"
    say "soak: ${VOXSEAL_SOAK_MINUTES:-5} min in the background (log: $soak_log)"
    scripts/soak.sh "${VOXSEAL_SOAK_MINUTES:-5}" >"$soak_log" 2>&1 &
    soak_pid=$!
    trap 'kill_tree "$soak_pid"; kill_tree "$win_pid"' EXIT
    say "AWS template: cfn-lint and checkov (deploy/aws/validate.sh)"
    deploy/aws/validate.sh
    say "installers: build, install, refuse tampered (scripts/check-dist.sh)"
    scripts/check-dist.sh
    say "fuzzing smoke run (scripts/fuzz.sh smoke on the dev profile; docs/fuzzing.md)"
    FUZZ_PROFILE=dev FUZZ_SECONDS="${FUZZ_SECONDS:-10}" scripts/fuzz.sh smoke
    say "Windows: waiting for the background builds"
    if ! wait "$win_pid"; then
        tail -40 "$win_log" >&2
        die "the Windows build failed (log: $win_log)"
    fi
    rm -f "$win_log"
    say "Windows: the test suites as .exe files under Wine (scripts/windows.sh; docs/windows.md)"
    scripts/windows.sh test
    say "Windows: the installer under Wine (scripts/check-windows-installer.sh)"
    scripts/check-windows-installer.sh
    say "waiting for the soak"
    soak_rc=0
    wait "$soak_pid" || soak_rc=$?
    trap - EXIT
    if [[ $soak_rc -ne 0 ]]; then
        cat "$soak_log" >&2
        die "soak failed"
    fi
    grep -E "SOAK (result|t=)" "$soak_log" | tail -3 >&2 || true
    rm -f "$soak_log"
fi
say "all tests passed"
