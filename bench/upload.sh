#!/usr/bin/env bash
# Upload throughput against the AWS CLI, in one run, on the same local S3 endpoint.
#
# Starts `voxseal dev-stack` (the embedded S3 endpoint and the broker on 127.0.0.1, as in the
# README's local mode), seals a ~256 MiB item (a 2,015 s take at 48 kHz: raw audio and features,
# each age-encrypted), then per round uploads one such item with `voxseal upload` (broker
# credentials, multipart, SSE-KMS, CRC32C part checksums, If-None-Match) and a copy of the same three
# files with `aws s3 cp --recursive --sse aws:kms --sse-kms-key-id <the project key>` (admin keys,
# its default 8 MiB parts and 10 threads): the same requests, SSE-KMS under the project key being
# what the production bucket policy demands of every write.
# Release build; wall clock of each command as a user runs it, start-up included; each tool's
# fixed cost (a run with nothing to upload / an empty listing) is reported beside it. (With nothing
# queued `voxseal upload` stops before unlocking the token store and asking the broker, so its
# fixed cost is start-up only; both are in its upload times.)
#
#   bench/upload.sh [rounds] [-- UPLOAD-ARGS...]
#                                default 3; prints a table, writes bench/data/upload.json; the
#                                arguments after -- go to `voxseal upload` (--parts-in-flight N)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
VOXSEAL_LOG_TAG=bench-upload
cd "$VOXSEAL_ROOT"
rounds=3
[[ $# -eq 0 || $1 == -- ]] || { rounds=$1; shift; }
[[ $# -eq 0 ]] || shift
upload_args=("$@")
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "usage: bench/upload.sh [rounds] [-- UPLOAD-ARGS...]"
scripts/setup.sh --test >/dev/null 2>&1 || scripts/setup.sh --test
. scripts/env.sh
for tool in sox python3; do have "$tool" || die "$tool not found (scripts/setup.sh --test)"; done
aws="$VOXSEAL_ROOT/.venv/bin/aws"
[[ -x $aws ]] || die "$aws not found (scripts/setup.sh --test installs the AWS CLI in .venv)"

say "cargo build --release -p voxseal-cli"
cargo build --quiet --release -p voxseal-cli
voxseal="$CARGO_TARGET_DIR/release/voxseal"

work="$(mktemp -d "${TMPDIR:-/tmp}/voxseal-upload-bench.XXXXXX")"
stack_pid=""
cleanup() {
    [[ -z $stack_pid ]] || kill -INT "$stack_pid" 2>/dev/null || true
    [[ -z $stack_pid ]] || wait "$stack_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export VOXSEAL_DATA_DIR="$work/data" VOXSEAL_TOKEN_STORE=file VOXSEAL_TOKEN_PASSPHRASE=bench \
    NO_COLOR=1

say "starting the dev stack"
"$voxseal" dev-stack --dir "$work/stack" --s3-port 0 --broker-port 0 --join \
    >"$work/stack.out" 2>"$work/stack.err" &
stack_pid=$!
for _ in $(seq 1 300); do grep -q "running; press Ctrl-C" "$work/stack.err" && break; sleep 0.2; done
grep -q "running; press Ctrl-C" "$work/stack.err" || { cat "$work/stack.err" >&2; die "dev stack did not start"; }
endpoint="$(sed -n 's/.*S3 endpoint *\(http[^ ]*\).*/\1/p' "$work/stack.err")"
bucket="$(sed -n 's/.*(bucket \([^)]*\)).*/\1/p' "$work/stack.err")"
AWS_ACCESS_KEY_ID="$(grep -o 'AWS_ACCESS_KEY_ID=[^ ]*' "$work/stack.err" | cut -d= -f2)"
AWS_SECRET_ACCESS_KEY="$(grep -o 'AWS_SECRET_ACCESS_KEY=[^ ]*' "$work/stack.err" | cut -d= -f2)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
# The stack signs its project with its own lead key: trust it from outside the data directory.
export VOXSEAL_TRUST_LEAD_KEY="$work/stack/keys/lead.pub"
say "endpoint $endpoint, bucket $bucket"

# The demo project caps takes at 120 s; this bench needs one long take. The lead edits and
# re-signs the installed config, as a project lead would (voxseal project sign).
printf '\n[capture]\nmax_take_s = 3600.0\n' >>"$VOXSEAL_DATA_DIR/project.toml"
"$voxseal" project sign "$VOXSEAL_DATA_DIR/project.toml" --key "$work/stack/keys/lead.key" >/dev/null

kms_key="$(sed -n 's/^kms_key_arn *= *"\(.*\)"/\1/p' "$VOXSEAL_DATA_DIR/project.toml")"
[[ -n $kms_key ]] || die "no kms_key_arn in $VOXSEAL_DATA_DIR/project.toml"

say "making the take: 2,015 s of 48 kHz 16-bit audio"
sox -n -r 48000 -c 1 -b 16 "$work/take.wav" synth 2015 pinknoise vol 0.1

# Runs a command, its output to a log; prints its wall time, its own CPU time (user + system, its
# children included) and the endpoint's CPU time meanwhile, in seconds, separated by spaces. The
# endpoint shares the 2 cores with the client, so its work shows in both tools' wall times.
timed() {
    local log=$1
    shift
    python3 - "$log" "$stack_pid" "$@" <<'EOF' || { cat "$log" >&2; die "failed: $*"; }
import os, resource, subprocess, sys, time
log, server, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
tick = os.sysconf("SC_CLK_TCK")
def server_cpu():
    fields = open(f"/proc/{server}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick
s0, r0, t0 = server_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
with open(log, "wb") as out:
    code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
t1, r1, s1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN), server_cpu()
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(f"{t1 - t0:.3f} {cpu:.3f} {s1 - s0:.3f}")
sys.exit(code)
EOF
}

results="$work/results.jsonl"
say "fixed costs: voxseal upload with an empty outbox, aws s3api list-objects-v2 of an empty prefix"
ours_fixed="$(timed "$work/fixed-ours.log" "$voxseal" upload)"
aws_fixed="$(timed "$work/fixed-aws.log" "$aws" --endpoint-url "$endpoint" s3api list-objects-v2 \
    --bucket "$bucket" --prefix none/)"

for round in $(seq 1 "$rounds"); do
    "$voxseal" seal "$work/take.wav" --accept-failed >"$work/seal.log" 2>&1 ||
        { cat "$work/seal.log" >&2; die "sealing failed"; }
    item="$(sed -n 's/^=> sealed \([^ ]*\) into .*/\1/p' "$work/seal.log")"
    [[ -n $item ]] || { cat "$work/seal.log" >&2; die "no item sealed"; }
    copy="$work/copy-$round"
    cp -r "$VOXSEAL_DATA_DIR/outbox/$item" "$copy"
    rm -f "$copy/state.json"
    bytes="$(find "$copy" -type f -printf '%s\n' | awk '{s += $1} END {print s}')"
    # Both read their files from the page cache: warm it for both alike.
    cat "$copy"/* "$VOXSEAL_DATA_DIR/outbox/$item"/* >/dev/null

    ours="$(timed "$work/up-$round.log" "$voxseal" upload "${upload_args[@]}")"
    theirs="$(timed "$work/cp-$round.log" "$aws" --endpoint-url "$endpoint" s3 cp --recursive --quiet \
        --sse aws:kms --sse-kms-key-id "$kms_key" \
        "$copy" "s3://$bucket/aws-cli-copy/$round/")"

    # Read back as the admin: the CLI's copy was written with SSE-KMS, as ours; the item's objects
    # and the CLI's copy, with their sizes.
    for f in "$copy"/*; do
        sse="$("$aws" --endpoint-url "$endpoint" s3api head-object --bucket "$bucket" \
            --key "aws-cli-copy/$round/$(basename "$f")" --query ServerSideEncryption --output text)"
        [[ $sse == aws:kms ]] || die "the AWS CLI's copy of $(basename "$f") has SSE '$sse', not aws:kms"
    done
    "$aws" --endpoint-url "$endpoint" s3api list-objects-v2 --bucket "$bucket" --output json \
        >"$work/list.json"
    python3 - "$work/list.json" "$item" "$round" "$bytes" "$ours" "$theirs" >>"$results" <<'EOF'
import json, sys
listing, item, rnd, size, ours, theirs = sys.argv[1:]
objs = json.load(open(listing)).get("Contents", [])
mine = [o for o in objs if item in o["Key"]]
cli = [o for o in objs if o["Key"].startswith(f"aws-cli-copy/{rnd}/")]
size = int(size)
assert len(mine) == 3, f"voxseal upload stored {len(mine)} objects of {item}, not 3"
assert sum(o["Size"] for o in mine) == size, "voxseal's objects do not add up to the item"
assert sum(o["Size"] for o in cli) == size, "the AWS CLI's copy does not add up to the item"
ours, ours_cpu, ours_server = map(float, ours.split())
theirs, theirs_cpu, theirs_server = map(float, theirs.split())
print(json.dumps({"round": int(rnd), "bytes": size, "voxseal_s": ours, "aws_cli_s": theirs,
                  "voxseal_cpu_s": ours_cpu, "aws_cli_cpu_s": theirs_cpu,
                  "endpoint_cpu_s_voxseal": ours_server, "endpoint_cpu_s_aws_cli": theirs_server}))
EOF
    say "round $round: $(tail -1 "$results")"
    grep -q "uploaded" "$work/up-$round.log" || { cat "$work/up-$round.log" >&2; die "voxseal upload did not upload"; }
done

mkdir -p bench/data
python3 - "$results" "$ours_fixed" "$aws_fixed" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ours_fixed, aws_fixed = float(sys.argv[2].split()[0]), float(sys.argv[3].split()[0])
mib = rows[0]["bytes"] / 2**20
ours = statistics.median(r["voxseal_s"] for r in rows)
aws = statistics.median(r["aws_cli_s"] for r in rows)
med = lambda k: round(statistics.median(r[k] for r in rows), 3)
out = {
    "item_mib": round(mib, 1), "rounds": len(rows),
    "voxseal_upload_s": ours, "aws_cli_s": aws,
    "voxseal_mib_s": round(mib / ours, 1), "aws_cli_mib_s": round(mib / aws, 1),
    "ratio_wall": round(aws / ours, 2),
    "voxseal_fixed_s": ours_fixed, "aws_cli_fixed_s": aws_fixed,
    "ratio_without_fixed_costs": round((aws - aws_fixed) / (ours - ours_fixed), 2),
    "voxseal_cpu_s": med("voxseal_cpu_s"), "aws_cli_cpu_s": med("aws_cli_cpu_s"),
    "endpoint_cpu_s_voxseal": med("endpoint_cpu_s_voxseal"),
    "endpoint_cpu_s_aws_cli": med("endpoint_cpu_s_aws_cli"),
    "runs": rows,
}
json.dump(out, open("bench/data/upload.json", "w"), indent=2)
print(f"item: {mib:.1f} MiB (raw audio + features, age-encrypted), {len(rows)} rounds, medians")
print(f"  voxseal upload   {ours:7.3f} s  {mib / ours:7.1f} MiB/s   (fixed cost {ours_fixed:.3f} s; CPU {out['voxseal_cpu_s']:.2f} s, endpoint CPU {out['endpoint_cpu_s_voxseal']:.2f} s)")
print(f"  aws s3 cp        {aws:7.3f} s  {mib / aws:7.1f} MiB/s   (fixed cost {aws_fixed:.3f} s; CPU {out['aws_cli_cpu_s']:.2f} s, endpoint CPU {out['endpoint_cpu_s_aws_cli']:.2f} s)")
print(f"  ratio (aws / voxseal wall time): {aws / ours:.2f}x; without fixed costs: {out['ratio_without_fixed_costs']:.2f}x")
EOF
