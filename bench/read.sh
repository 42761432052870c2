#!/usr/bin/env bash
# Read throughput of the data team's package against the naive loop, in one run, on the same data.
#
# Seals real samples with the CLI, reseals VOXSEAL_RAY_SAMPLES copies (default 10,000) into moto on
# 127.0.0.1 (python/tests/test_ray.py), then reads them all three ways: the naive loop (boto3 get +
# pyrage + safetensors in one process, no manifest, no checks, no audit), and voxseal.ray with 1
# and 2 workers (a read session per worker, manifest GET and checks, binding, audit records shipped
# to the audit bucket). Prints READ lines: samples/s, the ratio to the naive loop, and the peak
# resident memory of a worker: ru_maxrss (which also counts the object store's shared pages the
# worker wrote, up to the store's size) and, from /proc/<pid>/status, peak RssAnon (the worker's
# own memory: judge per-worker memory on it) and RssShmem. moto, a single Python process, serves
# every request on the same 2 cores: the figures are relative, not what S3 would give.
#
#   bench/read.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
VOXSEAL_LOG_TAG=bench-read
cd "$VOXSEAL_ROOT"
scripts/setup.sh --test >/dev/null 2>&1 || scripts/setup.sh --test
. scripts/env.sh
cargo build --quiet -p voxseal-cli
wheels="$(mktemp -d)"
.venv/bin/python -m pip wheel --quiet --no-deps --no-build-isolation -w "$wheels" python/
.venv/bin/python -m pip install --quiet --no-deps --force-reinstall "$wheels"/voxseal-*.whl
rm -rf "$wheels"
cd python/tests
PYTHONDONTWRITEBYTECODE=1 VOXSEAL_BENCH_READ=1 VOXSEAL_BIN="$CARGO_TARGET_DIR/debug/voxseal" \
    ../../.venv/bin/python -m pytest -q -s -p no:cacheprovider test_ray.py -k throughput | grep -E '^(RAY|READ)'
