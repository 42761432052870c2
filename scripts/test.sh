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
export RUST_BACKTRACE=1

# The desktop app's end-to-end test drives the built binary, with the built UI inside it.
say "ui: npm ci && npm run build"
npm --prefix ui ci --no-audit --no-fund
npm --prefix ui run build
say "cargo build -p voxseal-desktop"
cargo build -p voxseal-desktop

say "cargo test --workspace"
cargo test --workspace "${extra[@]}"
# The 5-minute real-time recording soak (#[ignore]d in plain cargo test; docs/reliability.md).
if [[ ${#extra[@]} -eq 0 ]]; then scripts/soak.sh 5; fi
say "all tests passed"
