#!/usr/bin/env bash
# The recording soak: one take of a synthetic voice recorded in real time for N minutes through
# the microphone's path (callback ring, recorder thread, meter, quality analyzer, encrypted spool),
# with resident memory sampled every 5 s. Fails on any dropped sample, on a spool that differs
# from what was produced, or on memory that grows after the warm-up (first fifth of the run).
#
#   scripts/soak.sh          5 minutes (what CI runs, from scripts/test.sh)
#   scripts/soak.sh 60       the one-hour soak (about 700 MB of spool in a temp directory)
#
# The RSS curve is printed as "SOAK t=..." lines and a "SOAK result:" summary; see
# docs/reliability.md for the last measured figures.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=soak
cd "$VOXSEAL_ROOT"
. scripts/env.sh

minutes="${1:-5}"
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || die "usage: scripts/soak.sh [minutes]"
say "recording ${minutes} min of synthetic speech in real time"
# Build first, then run the test binary itself: cargo is not left holding the build directory's
# lock for minutes, so scripts/test.sh can build other things while the soak records.
bin="$(cargo test -p voxseal-reliability --test soak --no-run --message-format=json-render-diagnostics |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "soak":
        print(m["executable"])')"
[[ -x $bin ]] || die "could not build the soak test"
VOXSEAL_SOAK_MINUTES="$minutes" "$bin" --ignored --nocapture --test-threads 1
say "soak passed"
