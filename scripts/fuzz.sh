#!/usr/bin/env bash
# Fuzzes every parser that takes outside bytes (cargo-fuzz + libFuzzer; see docs/fuzzing.md).
#
#   scripts/fuzz.sh build                 install cargo-fuzz if missing, build every target
#   scripts/fuzz.sh smoke [target...]     each target FUZZ_SECONDS (default 20) from the committed
#                                         seeds; non-zero exit on any crash, hang or OOM (CI)
#   scripts/fuzz.sh long [seconds] [target...]
#                                         each target for `seconds` (default 600) at nice 19,
#                                         keeping its corpus in $FUZZ_WORK_DIR between runs
#   scripts/fuzz.sh run <target> [libFuzzer args...]   one target, your arguments
#   scripts/fuzz.sh repro <target> <file...>           run a target on saved inputs
#   scripts/fuzz.sh seeds                 regenerate fuzz/corpus/ from the real code (seedgen)
#   scripts/fuzz.sh list                  the targets
#
# Env: FUZZ_SECONDS (smoke, default 20), FUZZ_SANITIZER (address | none, default address),
#      FUZZ_PROFILE (release | dev, default release; dev optimises only the code under test and
#      the crypto and DSP crates: a quicker cold build that runs slower; scripts/test.sh's smoke
#      run uses it, docs/fuzzing.md has the figures),
#      FUZZ_TARGET_DIR (build cache, default ~/.cache/voxseal/fuzz-target, apart from the main
#      build cache so sanitizer builds never evict it), FUZZ_WORK_DIR (long-run corpora, default
#      ~/.cache/voxseal/fuzz-work), FUZZ_BUILD_JOBS (default 2), FUZZ_RSS_MB (default 2048).
# Crash inputs land in fuzz/artifacts/<target>/ (gitignored); reproduce with `repro`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=fuzz
cd "$VOXSEAL_ROOT"

usage() { sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(spool_reader manifest project_config audit_line broker_request wav_reader age_open)
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/voxseal/fuzz-target}"
FUZZ_WORK_DIR="${FUZZ_WORK_DIR:-$HOME/.cache/voxseal/fuzz-work}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
ARTIFACTS="$VOXSEAL_ROOT/fuzz/artifacts"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
FUZZ_PROFILE="${FUZZ_PROFILE:-release}"
case "$FUZZ_PROFILE" in
    release) PROFILE_FLAG=() ;;
    dev) PROFILE_FLAG=(--dev) ;;
    *) die "FUZZ_PROFILE is release or dev, not $FUZZ_PROFILE" ;;
esac
BIN_DIR="$FUZZ_TARGET_DIR/$TRIPLE/$([[ $FUZZ_PROFILE == dev ]] && echo debug || echo release)"

# Largest input per target: big enough for the committed seeds, small enough to stay fast.
max_len() {
    case "$1" in
        spool_reader) echo 4096 ;;
        broker_request) echo 8192 ;; # over the fixture's 4096-byte body limit
        wav_reader) echo 32768 ;;
        age_open) echo 65536 ;; # the sealed-WAV seed is ~20 KB
        *) echo 16384 ;;
    esac
}

# Largest single allocation per target: the file readers must never size a buffer from a
# header, so anything near this limit is a finding (Argon2 in broker_request takes 19 MiB).
malloc_limit() {
    case "$1" in
        wav_reader | spool_reader) echo 64 ;;
        *) echo 512 ;;
    esac
}

ensure_cargo_fuzz() {
    if have cargo-fuzz && [[ "$(cargo fuzz --version 2>/dev/null)" == *"$CARGO_FUZZ_VERSION"* ]]; then
        return 0
    fi
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install --locked)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked -j "${FUZZ_BUILD_JOBS:-2}"
}

build() {
    ensure_cargo_fuzz
    local san=()
    [[ $FUZZ_SANITIZER == address ]] || san=(--sanitizer "$FUZZ_SANITIZER")
    say "building ${#TARGETS[@]} targets ($FUZZ_PROFILE, sanitizer: $FUZZ_SANITIZER, cache: $FUZZ_TARGET_DIR)"
    local t0=$SECONDS
    # cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes); RUSTC_BOOTSTRAP lets
    # the stable toolchain accept them. -a: debug assertions and overflow checks on.
    RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS="${FUZZ_BUILD_JOBS:-2}" \
        cargo fuzz build -a "${san[@]}" "${PROFILE_FLAG[@]}" --target-dir "$FUZZ_TARGET_DIR"
    say "build: $((SECONDS - t0)) s"
}

is_target() {
    local t
    for t in "${TARGETS[@]}"; do [[ $t == "$1" ]] && return 0; done
    return 1
}

# A per-run scratch directory for the harnesses' temp files (libFuzzer exits without running
# destructors); /dev/shm when there is one, so fsyncs and rewrites cost nothing.
SCRATCH=""
make_scratch() {
    local base=/dev/shm
    [[ -d $base && -w $base ]] || base="${TMPDIR:-/tmp}"
    SCRATCH="$(mktemp -d "$base/voxseal-fuzz.XXXXXX")"
}
cleanup() { [[ -z $SCRATCH ]] || rm -rf "$SCRATCH"; }
trap cleanup EXIT

# run_target <target> <seconds> <work-corpus-dir> [extra libFuzzer args...]
# Prints one summary line; returns libFuzzer's exit status.
SUMMARY=()
run_target() {
    local t=$1 secs=$2 work=$3
    shift 3
    local bin="$BIN_DIR/$t"
    [[ -x $bin ]] || die "$bin is missing: run scripts/fuzz.sh build"
    mkdir -p "$work" "$ARTIFACTS/$t"
    local log="$SCRATCH/$t.log" timing="$SCRATCH/$t.time" tmp="$SCRATCH/tmp-$t"
    mkdir -p "$tmp"
    local rc=0
    TMPDIR="$tmp" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0:allocator_may_return_null=1}" \
        /usr/bin/time -f '%e %U %S' -o "$timing" \
        "${NICE[@]}" "$bin" "$work" "fuzz/corpus/$t" \
        -max_total_time="$secs" -max_len="$(max_len "$t")" \
        -rss_limit_mb="$FUZZ_RSS_MB" -malloc_limit_mb="$(malloc_limit "$t")" -timeout=10 \
        -artifact_prefix="$ARTIFACTS/$t/" -print_final_stats=1 \
        "$@" >"$log" 2>&1 || rc=$?
    rm -rf "$tmp"
    cp "$log" "$ARTIFACTS/$t/last-run.log"
    local execs peak wall user sys
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    peak="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
    # (time's first line is "Command exited with non-zero status N" after a crash)
    read -r wall user sys < <(tail -1 "$timing") || true
    local cpu
    cpu="$(awk -v u="${user:-0}" -v s="${sys:-0}" 'BEGIN { printf "%.1f", u + s }')"
    local line
    line="$(printf '%-15s %-6s execs %-10s cpu %7s s  wall %6s s  peak %5s MB  corpus %s' \
        "$t" "$([[ $rc -eq 0 ]] && echo ok || echo FAIL)" "${execs:-?}" "$cpu" "${wall:-?}" \
        "${peak:-?}" "$(find "$work" -type f | wc -l)")"
    SUMMARY+=("$line")
    say "$line"
    if [[ $rc -ne 0 ]]; then
        say "$t failed (exit $rc); from its log (fuzz/artifacts/$t/last-run.log):"
        grep -E -A4 "panicked at|^==[0-9]+==ERROR|ERROR: libFuzzer" "$log" | grep -v "^ *[0-9]*: \|^ *at " | head -40 >&2 || true
        tail -12 "$log" >&2
        say "crash inputs: $(find "$ARTIFACTS/$t" -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' | tr '\n' ' ')"
        say "reproduce: scripts/fuzz.sh repro $t fuzz/artifacts/$t/<file>"
    fi
    return "$rc"
}

fuzz_all() {
    local mode=$1 secs=$2
    shift 2
    local targets=("$@")
    [[ ${#targets[@]} -gt 0 ]] || targets=("${TARGETS[@]}")
    local t
    for t in "${targets[@]}"; do is_target "$t" || die "unknown target $t (scripts/fuzz.sh list)"; done
    build
    make_scratch
    local failed=() t0=$SECONDS
    for t in "${targets[@]}"; do
        local work
        if [[ $mode == smoke ]]; then
            work="$SCRATCH/corpus-$t" # start from the committed seeds only
        else
            work="$FUZZ_WORK_DIR/$t"
        fi
        run_target "$t" "$secs" "$work" || failed+=("$t")
    done
    say "summary ($mode, ${secs} s per target, $((SECONDS - t0)) s in all):"
    printf '%s\n' "${SUMMARY[@]}" >&2
    if [[ ${#failed[@]} -gt 0 ]]; then
        die "failing targets: ${failed[*]}"
    fi
    say "no crashes, hangs or OOMs"
}

NICE=()
cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    build) build ;;
    smoke) fuzz_all smoke "${FUZZ_SECONDS:-20}" "$@" ;;
    long)
        secs=600
        if [[ ${1:-} =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
        NICE=(nice -n 19)
        fuzz_all long "$secs" "$@"
        ;;
    run)
        t="${1:-}"
        is_target "$t" || die "usage: scripts/fuzz.sh run <target> [libFuzzer args]"
        shift
        build
        make_scratch
        mkdir -p "$FUZZ_WORK_DIR/$t" "$ARTIFACTS/$t"
        TMPDIR="$SCRATCH" "$BIN_DIR/$t" "$FUZZ_WORK_DIR/$t" "fuzz/corpus/$t" \
            -max_len="$(max_len "$t")" -rss_limit_mb="$FUZZ_RSS_MB" -malloc_limit_mb="$(malloc_limit "$t")" \
            -timeout=10 -artifact_prefix="$ARTIFACTS/$t/" "$@"
        ;;
    repro)
        t="${1:-}"
        is_target "$t" && [[ $# -ge 2 ]] || die "usage: scripts/fuzz.sh repro <target> <file...>"
        shift
        build
        make_scratch
        TMPDIR="$SCRATCH" RUST_BACKTRACE=1 "$BIN_DIR/$t" -rss_limit_mb="$FUZZ_RSS_MB" \
            -malloc_limit_mb="$(malloc_limit "$t")" -timeout=10 "$@"
        ;;
    seeds)
        say "regenerating fuzz/corpus/ with seedgen"
        CARGO_BUILD_JOBS="${FUZZ_BUILD_JOBS:-2}" cargo run --release --quiet \
            --manifest-path fuzz/Cargo.toml -p voxseal-fuzz-seedgen \
            --target-dir "$FUZZ_TARGET_DIR/seedgen" -- fuzz/corpus
        ;;
    list) printf '%s\n' "${TARGETS[@]}" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        die "unknown command: ${cmd:-<none>}"
        ;;
esac
