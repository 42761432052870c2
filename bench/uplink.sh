#!/usr/bin/env bash
# Uploads over emulated home uplinks against the AWS CLI, side by side in one run (issue 16;
# docs/uplink.md). As root (network namespaces).
#
# Per profile (dsl, wifi, hotspot: tests/uplink/src/lib.rs): voxseal-netem joins two fresh
# namespaces; `voxseal dev-stack` runs in the servers' one; the queue (20 ten-second takes and
# one 10-minute take at 48 kHz, sealed once, release build) is uploaded from the contractor's
# namespace by `voxseal upload` (broker credentials, SSE-KMS, checksums, If-None-Match), and the
# same files by `aws s3 cp --recursive --sse aws:kms` (admin keys, its default 8 MiB parts and
# 10 requests at once). Reported per tool: wall time, the IP bytes the contractor's side put on
# the uplink (retransmissions included), and the link's utilisation (payload bits / (wall time x
# uplink rate)). The bucket is emptied between tools, so both store everything. A tool that
# gives up on a link gets a row with `failed` (its exit code and last words) and no ratio.
#
# `--sweep` instead uploads one 300 s take with `voxseal upload` only, once per part size and
# parts in flight (`<MiB>x<n>`), to choose them by measurement.
#
#   bench/uplink.sh [profile...]     default: dsl wifi hotspot; writes bench/data/uplink.json
#   bench/uplink.sh --sweep [profile...] [-- MIBxN...]
#                                    default: hotspot, 8x4 5x4 16x4 8x2 8x8;
#                                    writes bench/data/uplink-sweep.json
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
VOXSEAL_LOG_TAG=bench-uplink
cd "$VOXSEAL_ROOT"
sweep=""
[[ ${1:-} != --sweep ]] || { sweep=1; shift; }
profiles=() runs=()
while [[ $# -gt 0 && $1 != -- ]]; do profiles+=("$1"); shift; done
[[ $# -eq 0 ]] || { shift; runs=("$@"); }
if [[ -n $sweep ]]; then
    [[ ${#profiles[@]} -gt 0 ]] || profiles=(hotspot)
    [[ ${#runs[@]} -gt 0 ]] || runs=(8x4 5x4 16x4 8x2 8x8)
    for r in "${runs[@]}"; do [[ $r =~ ^[0-9]+x[0-9]+$ ]] || die "a sweep run is <MiB>x<parts>, not $r"; done
    runs=("${runs[@]/#/voxseal:}")
    out=bench/data/uplink-sweep.json
else
    [[ ${#profiles[@]} -gt 0 ]] || profiles=(dsl wifi hotspot)
    runs=(voxseal aws)
    out=bench/data/uplink.json
fi
for p in "${profiles[@]}"; do [[ $p =~ ^(dsl|wifi|hotspot)$ ]] || die "unknown profile $p (dsl, wifi, hotspot)"; done
[[ $(id -u) -eq 0 ]] || die "bench/uplink.sh makes network namespaces: run it as root"
scripts/setup.sh --test >/dev/null 2>&1 || scripts/setup.sh --test
. scripts/env.sh
aws="$VOXSEAL_ROOT/.venv/bin/aws"
[[ -x $aws ]] || die "$aws not found (scripts/setup.sh --test installs the AWS CLI in .venv)"

say "cargo build --release -p voxseal-cli -p voxseal-uplink"
cargo build --quiet --release -p voxseal-cli -p voxseal-uplink
voxseal="$CARGO_TARGET_DIR/release/voxseal"
netem="$CARGO_TARGET_DIR/release/voxseal-netem"

work="$(mktemp -d "${TMPDIR:-/tmp}/voxseal-uplink-bench.XXXXXX")"
ns="vxbench$$"
stack_pid="" netem_pid=""
stop_stack() {
    [[ -z $stack_pid ]] || { kill -INT "$stack_pid" 2>/dev/null || true; wait "$stack_pid" 2>/dev/null || true; }
    stack_pid=""
}
stop_link() {
    [[ -z $netem_pid ]] || { exec 8>&-; wait "$netem_pid" 2>/dev/null || true; }
    netem_pid=""
    ip netns del "${ns}a" 2>/dev/null || true
    ip netns del "${ns}b" 2>/dev/null || true
}
cleanup() { stop_stack; stop_link; rm -rf "$work"; }
trap cleanup EXIT
export VOXSEAL_DATA_DIR="$work/data" VOXSEAL_TOKEN_STORE=file VOXSEAL_TOKEN_PASSPHRASE=bench \
    NO_COLOR=1 VOXSEAL_TRUST_LEAD_KEY="$work/stack/keys/lead.pub"

# Starts the link (its control on fd 8, its output on fd 9) and the dev stack behind it, which
# then runs for the whole bench (its broker's tokens live as long as it does); `profile NAME` on
# fd 8 changes the link between runs.
start() {
    mkfifo "$work/netem.in" "$work/netem.out"
    "$netem" --name "$ns" --profile "${profiles[0]}" --forward 9000 --forward 8787 \
        <"$work/netem.in" >"$work/netem.out" 2>>"$work/netem.err" &
    netem_pid=$!
    exec 8>"$work/netem.in" 9<"$work/netem.out"
    rm -f "$work/netem.in" "$work/netem.out"
    read -r -t 30 line <&9 && [[ $line == ready ]] || die "voxseal-netem did not start: $(cat "$work/netem.err")"
    ip netns exec "${ns}b" "$voxseal" dev-stack --dir "$work/stack" --s3-port 9000 --broker-port 8787 \
        --max-take-s 600 --join >"$work/stack.out" 2>"$work/stack.err" &
    stack_pid=$!
    for _ in $(seq 1 300); do grep -q "running; press Ctrl-C" "$work/stack.err" && break; sleep 0.2; done
    grep -q "running; press Ctrl-C" "$work/stack.err" || { cat "$work/stack.err" >&2; die "dev stack did not start"; }
}

stats() { echo stats >&8; read -r -t 10 line <&9; printf '%s\n' "$line"; }

start
AWS_ACCESS_KEY_ID="$(grep -o 'AWS_ACCESS_KEY_ID=[^ ]*' "$work/stack.err" | cut -d= -f2)"
AWS_SECRET_ACCESS_KEY="$(grep -o 'AWS_SECRET_ACCESS_KEY=[^ ]*' "$work/stack.err" | cut -d= -f2)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
# The admin's view of the bucket from the servers' side (no link in between).
admin_s3() { ip netns exec "${ns}b" "$aws" --endpoint-url http://127.0.0.1:9000 s3 "$@"; }

seal_take() {
    sox -n -r 48000 -c 1 -b 16 "$work/t.wav" synth "$1" pinknoise vol 0.1
    "$voxseal" seal "$work/t.wav" --accept-failed >/dev/null 2>>"$work/seal.err"
}
if [[ -n $sweep ]]; then
    say "sealing one take of 300 s at 48 kHz"
    seal_take 300
else
    say "sealing the queue: 20 takes of 10 s and one of 600 s at 48 kHz"
    for _ in $(seq 1 20); do seal_take 10; done
    seal_take 600
fi
cp -a "$VOXSEAL_DATA_DIR/outbox" "$work/outbox.sealed"
mkdir -p "$work/files"
for item in "$work"/outbox.sealed/*/; do
    id="$(basename "$item")"
    mkdir -p "$work/files/$id"
    cp "$item"*.age "$item"manifest.json "$work/files/$id/"
done
payload="$(find "$work/files" -type f -printf '%s\n' | awk '{s += $1} END {print s}')"
say "payload: $payload bytes in $(find "$work/files" -type f | wc -l) files"
kms_key="$(sed -n 's/^kms_key_arn *= *"\(.*\)"/\1/p' "$VOXSEAL_DATA_DIR/project.toml")"

results="$work/results.jsonl"
failed=0
for profile in "${profiles[@]}"; do
    echo "profile $profile" >&8
    for run in "${runs[@]}"; do
        tool="${run%%:*}" setting="${run#*:}"
        [[ $run == *:* ]] || setting=""
        admin_s3 rm --recursive --quiet s3://voxseal-dev/ >/dev/null
        rm -rf "$VOXSEAL_DATA_DIR/outbox" && cp -a "$work/outbox.sealed" "$VOXSEAL_DATA_DIR/outbox"
        cat "$work"/files/*/* >/dev/null
        before="$(stats)"
        t0=$(date +%s.%N)
        rc=0
        log="$work/$profile-$tool-$setting.log"
        if [[ $tool == voxseal ]]; then
            tuning=()
            [[ -z $setting ]] || tuning=(--part-size-mib "${setting%x*}" --parts-in-flight "${setting#*x}")
            ip netns exec "${ns}a" "$voxseal" upload "${tuning[@]}" >"$log" 2>&1 || rc=$?
        else
            ip netns exec "${ns}a" "$aws" --endpoint-url http://127.0.0.1:9000 s3 cp --recursive --only-show-errors \
                --sse aws:kms --sse-kms-key-id "$kms_key" "$work/files" "s3://voxseal-dev/aws-cli-copy/" \
                >"$log" 2>&1 || rc=$?
        fi
        t1=$(date +%s.%N)
        after="$(stats)"
        if [[ $tool == voxseal ]] && ! grep -q " 0 failed, 0 queued" "$log"; then
            [[ $rc -ne 0 ]] || rc=1
        fi
        # A failed run is a result too (the tool gave up on this link): its row says so.
        error=""
        if [[ $rc -ne 0 ]]; then
            error="exit $rc: $(grep -v '^\s*$' "$log" | tail -3 | tr '\n' ' ' | cut -c1-600 || true)"
            say "$tool failed on $profile: $error"
            [[ $tool == aws ]] || failed=1
        fi
        stored="$(admin_s3 ls --recursive --summarize s3://voxseal-dev/ | sed -n 's/.*Total Size: //p')"
        python3 - "$profile" "$tool" "$t0" "$t1" "$payload" "$stored" "$before" "$after" "$error" "$setting" >>"$results" <<'EOF'
import json, sys
profile, tool, t0, t1, payload, stored, before, after, error, setting = sys.argv[1:]
rates = {"dsl": 10_000, "wifi": 5_000, "hotspot": 2_000}
wall, payload = float(t1) - float(t0), int(payload)
b, a = json.loads(before)["up"], json.loads(after)["up"]
sent = a["sent_bytes"] - b["sent_bytes"]
row = {"profile": profile, "tool": tool, "wall_s": round(wall, 1), "payload_bytes": payload,
       "stored_bytes": int(stored or 0), "uplink_bytes": sent, "uplink_per_payload": round(sent / payload, 3),
       "link_utilisation": round(payload * 8 / (wall * rates[profile] * 1000), 3),
       "lost": a["lost"] - b["lost"], "queue_drops": a["queue"] - b["queue"]}
if setting:
    row["part_mib"], row["parts_in_flight"] = map(int, setting.split("x"))
if error:
    row["failed"] = error
print(json.dumps(row))
EOF
        say "$(tail -1 "$results")"
    done
done

mkdir -p bench/data
python3 - "$results" "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = {"rows": rows, "ratios": {}}
print(f"{'profile':8} {'tool':8} {'setting':8} {'wall s':>8} {'uplink/payload':>15} {'link use':>9}")
for r in rows:
    setting = f"{r['part_mib']}x{r['parts_in_flight']}" if "part_mib" in r else "default"
    print(f"{r['profile']:8} {r['tool']:8} {setting:8} {r['wall_s']:8.1f} {r['uplink_per_payload']:15.3f} {r['link_utilisation']:9.2f}"
          + (f"  FAILED ({r['failed']})" if "failed" in r else ""))
for p in dict.fromkeys(r["profile"] for r in rows):
    t = {r["tool"]: r["wall_s"] for r in rows if r["profile"] == p and "failed" not in r}
    if "voxseal" in t and "aws" in t:
        out["ratios"][p] = round(t["aws"] / t["voxseal"], 2)
        print(f"{p}: aws s3 cp / voxseal upload wall time = {out['ratios'][p]:.2f}x")
json.dump(out, open(sys.argv[2], "w"), indent=2)
EOF
[[ $failed -eq 0 ]] || die "voxseal upload failed on a profile (see above)"
