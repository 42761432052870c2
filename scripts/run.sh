#!/usr/bin/env bash
# Installs what Voxseal needs and runs it. Until the desktop app lands this is the narrated demo:
# record 5 s (microphone, or a synthetic voice when there is none), seal, open, wipe.
#
#   scripts/run.sh               the demo
#   scripts/run.sh <args>        any voxseal command, e.g. scripts/run.sh devices
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=run
cd "$VOXSEAL_ROOT"
scripts/setup.sh
. scripts/env.sh
say "building voxseal (release; the first build takes a few minutes)"
cargo build --release --quiet -p voxseal-cli
bin="$CARGO_TARGET_DIR/release/voxseal"
if [[ $# -eq 0 ]]; then
    exec "$bin" demo
fi
exec "$bin" "$@"
