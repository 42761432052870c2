#!/usr/bin/env bash
# The desktop app's numbers (issue: cold start to interactive window, memory idle and while
# recording, CPU while recording, Stop to sealed for a 10 s take, .deb size), release builds,
# with real capture through the private PulseAudio server.
#
#   bench/app.sh [part]     part: all (default), metrics, start, package; prints JSON lines;
#                           the figures go to docs/performance.md by hand
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
VOXSEAL_LOG_TAG=bench-app
cd "$VOXSEAL_ROOT"
scripts/setup.sh --test >/dev/null
. scripts/env.sh
eval "$(scripts/pulse.sh)"
part="${1:-all}"
[[ $part =~ ^(all|metrics|start|package)$ ]] || die "usage: bench/app.sh [all|metrics|start|package]"
want() { [[ $part == all || $part == "$1" ]]; }

if want metrics; then
say "app logic: memory, CPU while recording, stop to sealed (release)"
cargo run --quiet --release -p voxseal-app --example app_metrics
fi

if want start; then
say "desktop app: cold start to interactive (release, local mode, fresh data directory, 3 runs)"
build_ui --silent
VOXSEAL_LOCAL_ONLY=1 cargo build --quiet --release -p voxseal-desktop --features custom-protocol
display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1280x900x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null' EXIT
sleep 1
for run in 1 2 3; do
    data="$(mktemp -d)"
    log="$data/app.log"
    DISPLAY="$display" VOXSEAL_DATA_DIR="$data/data" VOXSEAL_STARTUP_TRACE=1 \
        "$CARGO_TARGET_DIR/release/voxseal-desktop" 2>"$log" &
    app=$!
    for _ in $(seq 1 300); do grep -q "interactive after" "$log" && break; sleep 0.1; done
    ms="$(grep -o 'interactive after [0-9]*' "$log" | grep -o '[0-9]*$' || echo null)"
    sleep 5
    # The app and its WebKit processes (web, network; and their children) together. RSS counts
    # the shared WebKit/GTK libraries once per process; PSS shares them out, so its sum is what
    # the app costs the machine.
    pids=$app
    frontier=$app
    while [[ -n $frontier ]]; do
        frontier="$(for p in $frontier; do pgrep -P "$p" || true; done)"
        pids="$pids $frontier"
    done
    rss=0
    pss=0
    for p in $pids; do
        rss=$((rss + $(awk '/^VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0)))
        pss=$((pss + $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0)))
    done
    nprocs=$(wc -w <<<"$pids")
    kill $app; wait $app 2>/dev/null || true
    printf '{"run":%d,"cold_start_to_interactive_ms":%s,"processes":%d,"idle_rss_kib_sum":%d,"idle_pss_kib_sum":%d}\n' \
        "$run" "$ms" "$nprocs" "$rss" "$pss"
    rm -rf "$data"
done
kill $xvfb 2>/dev/null || true
trap - EXIT
fi

want package || exit 0
say ".deb size (release, throwaway keys)"
VOXSEAL_EPHEMERAL_KEYS=1 scripts/dist.sh --out "$CARGO_TARGET_DIR/bench-dist" >/dev/null 2>&1
for f in "$CARGO_TARGET_DIR"/bench-dist/*.deb "$CARGO_TARGET_DIR"/bench-dist/*.rpm; do
    printf '{"package":"%s","bytes":%d}\n' "$(basename "$f")" "$(stat -c %s "$f")"
done
