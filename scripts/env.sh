# shellcheck shell=bash
# Source this (do not run it):  . scripts/env.sh
# - CARGO_TARGET_DIR: kept if already set, else a fixed directory outside the
#   clone, so fresh clones (CI) reuse the same build cache.
# - VOXSEAL_PYTHON: the test venv's interpreter (made by scripts/setup.sh --test).
_voxseal_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd -P)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/voxseal/target}"
export VOXSEAL_PYTHON="$_voxseal_root/.venv/bin/python"
unset _voxseal_root
