#!/usr/bin/env bash
# Installs what Voxseal needs, builds it and opens the desktop app's demo: an embedded S3
# endpoint and credential broker on 127.0.0.1 (no AWS account), a demo project and a demo
# enrollment code shown on the first screen, in a data directory of its own (`<data dir>-demo`).
#
#   scripts/run.sh               the desktop app (the CLI demo when there is no display)
#   scripts/run.sh demo          the narrated CLI demo: record 5 s, seal, open, wipe
#   scripts/run.sh <command>     any voxseal CLI command, e.g. scripts/run.sh devices
#
# Env: VOXSEAL_DATA_DIR (the app's data directory; default: the platform's app data directory),
#      VOXSEAL_SOURCE=synthetic:speech to use a synthetic voice instead of the microphone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=run
cd "$VOXSEAL_ROOT"
scripts/setup.sh
. scripts/env.sh

if [[ $# -gt 0 || ( -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} ) ]]; then
    [[ $# -eq 0 ]] && say "no display: running the CLI demo instead of the desktop app"
    say "building voxseal (the first build takes a few minutes)"
    cargo build --quiet -p voxseal-cli
    bin="$CARGO_TARGET_DIR/debug/voxseal"
    [[ $# -eq 0 ]] && exec "$bin" demo
    exec "$bin" "$@"
fi

build_ui --silent
say "building the desktop app (the first build takes 10-15 minutes on 2 cores)"
cargo build --quiet -p voxseal-desktop
say "opening the Voxseal demo (local stack, its own data directory); the enroll screen offers a demo code"
exec "$CARGO_TARGET_DIR/debug/voxseal-desktop" --demo
