#!/usr/bin/env bash
# Installs what Voxseal needs on a Debian 12 machine. Idempotent, and quick
# when everything is already there (no network access then).
#
#   scripts/setup.sh            base: what building and running the CLI needs
#   scripts/setup.sh --test     base + what the tests need (tools, Python venv)
#   scripts/setup.sh --offline  never touch the network: fail if an install is needed
#                               (pip then only uses local wheels: --no-index + find-links)
#
# Env: VOXSEAL_BOOTSTRAP_PYTHON  interpreter that creates .venv (default: python3, >= 3.11)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=setup

usage() { sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

with_test=0
VOXSEAL_OFFLINE=${VOXSEAL_OFFLINE:-0}
for arg in "$@"; do
    case "$arg" in
        --test) with_test=1 ;;
        --offline) VOXSEAL_OFFLINE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

# Building and running: the CLI (ALSA, D-Bus for the keychain) and the desktop app (Tauri 2 on
# WebKitGTK); node and npm build the front end. Voxseal links no OpenSSL (sealing is pure Rust);
# libssl-dev stays until a fresh-machine run shows that no tool built here needs it.
BASE_APT=(build-essential pkg-config libasound2-dev libdbus-1-dev ca-certificates curl
          libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev)
# Tests: reference tools, headless audio, the app's WebDriver end-to-end test under Xvfb, and
# `ip` for the emulated-uplink namespaces (tests/uplink).
TEST_APT=(age espeak-ng sox pulseaudio pulseaudio-utils libasound2-plugins alsa-utils
          python3-venv python3-pip librsvg2-bin xvfb xauth webkit2gtk-driver imagemagick
          python3-torch iproute2)
# tauri-driver (WebDriver proxy for Tauri apps): 2.x, never the 3.0 alphas.
TAURI_DRIVER="$HOME/.cargo/bin/tauri-driver"
TAURI_DRIVER_VERSION='^2'

VENV="$VOXSEAL_ROOT/.venv"
REQS="$VOXSEAL_ROOT/scripts/requirements-test.txt"
STAMP="$VENV/.requirements.sha256"

# --- Debian packages --------------------------------------------------------
have dpkg-query || die "dpkg-query not found: this script expects Debian/Ubuntu"
if [[ $with_test -eq 1 ]]; then
    apt_ensure "${BASE_APT[@]}" "${TEST_APT[@]}"
else
    apt_ensure "${BASE_APT[@]}"
fi

# --- Node.js for the front end (never installed here: distributions ship versions too old) ---
node_ok() { have node && have npm && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; }
if ! node_ok; then
    say "error: Node.js 20.19 or newer with npm is needed to build the app's front end (found: $(node --version 2>/dev/null || echo none))."
    say "  e.g. https://github.com/nodesource/distributions, or: curl -fsSL https://deb.nodesource.com/setup_20.x | sudo -E bash - && sudo apt-get install -y nodejs"
    exit 1
fi
say "node: $(node --version), npm $(npm --version)"

# --- Rust toolchain (never installed here) ----------------------------------
if ! have cargo; then
    if [[ -x $HOME/.cargo/bin/cargo ]]; then
        die "cargo is in ~/.cargo/bin but not on PATH: run '. \"\$HOME/.cargo/env\"' and retry"
    fi
    say "error: cargo not found. Install Rust with rustup (https://rustup.rs):"
    say "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
    say "  . \"\$HOME/.cargo/env\""
    say "then run this script again."
    exit 1
fi
say "rust: $(cargo --version 2>/dev/null || echo 'cargo present (version unknown)')"

[[ $with_test -eq 1 ]] || { say "done (base)"; exit 0; }

# --- tauri-driver for the desktop end-to-end test ----------------------------
if [[ -x $TAURI_DRIVER ]]; then
    say "tauri-driver: $TAURI_DRIVER present"
else
    if [[ $VOXSEAL_OFFLINE == 1 ]]; then die "tauri-driver: missing and --offline was given"; fi
    say "tauri-driver: cargo install tauri-driver@$TAURI_DRIVER_VERSION into $HOME/.cargo (~80 s)"
    # Without CARGO_TARGET_DIR cargo builds in a temporary directory it removes afterwards,
    # keeping the tool's artifacts out of the workspace's build cache.
    env -u CARGO_TARGET_DIR cargo install tauri-driver --locked --quiet \
        --version "$TAURI_DRIVER_VERSION" --root "$HOME/.cargo"
fi

# --- Python venv for tests --------------------------------------------------
[[ -f $REQS ]] || die "missing $REQS"

if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "venv: $VENV present ($("$VENV/bin/python" -c 'import platform; print(platform.python_version())'))"
else
    py="${VOXSEAL_BOOTSTRAP_PYTHON:-python3}"
    have "$py" || die "venv: $py not found (set VOXSEAL_BOOTSTRAP_PYTHON)"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "venv: $py is $("$py" -V 2>&1); need Python >= 3.11 (set VOXSEAL_BOOTSTRAP_PYTHON)"
    if [[ -e $VENV ]]; then
        say "venv: $VENV is broken, recreating with $py ($("$py" -V 2>&1))"
        rm -rf "$VENV"
    else
        say "venv: creating $VENV with $py ($("$py" -V 2>&1))"
    fi
    "$py" -m venv "$VENV"
fi

want="$(sha256sum "$REQS" | cut -d' ' -f1)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
if [[ $want == "$have_stamp" ]]; then
    say "pip: requirements-test.txt unchanged (sha256 ${want:0:12}), nothing to install"
else
    pip_args=(install --quiet --disable-pip-version-check --only-binary=:all: -r "$REQS")
    if [[ $VOXSEAL_OFFLINE == 1 ]]; then
        say "pip: requirements changed; --offline: installing from local wheels only"
        pip_args+=(--no-index)
    else
        say "pip: installing requirements-test.txt (sha256 ${want:0:12}; a fresh venv takes ~1 min)"
    fi
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip "${pip_args[@]}"
    say "pip: checking imports (librosa + numba JIT, soundfile, kaldi-native-fbank, pyrage, safetensors, moto, aws)"
    "$VENV/bin/python" - <<'PY'
import numba, librosa, soundfile, kaldi_native_fbank, pyrage, safetensors.numpy, moto, numpy as np
assert numba.njit(lambda x: x + 1)(1) == 2
librosa.feature.melspectrogram(y=np.zeros(1600, dtype=np.float32), sr=16000, n_fft=512, hop_length=160)
PY
    "$VENV/bin/aws" --version >/dev/null
    printf '%s\n' "$want" > "$STAMP"
    say "pip: done, stamp written"
fi
# side_venv NAME VENV REQS CHECK CREATE...: a venv of its own at VENV (made by CREATE... when
# missing), filled from REQS only when that file's sha256 changed; CHECK runs in it afterwards.
side_venv() {
    local name="$1" venv="$2" reqs="$3" check="$4"; shift 4
    local stamp="$venv/.requirements.sha256" want
    want="$(sha256sum "$reqs" | cut -d' ' -f1)"
    if [[ $want == "$(cat "$stamp" 2>/dev/null || true)" ]]; then
        say "$name: $(basename "$reqs") unchanged (sha256 ${want:0:12}), nothing to install"
        return
    fi
    local args=(install --quiet --disable-pip-version-check --only-binary=:all: -r "$reqs")
    if [[ $VOXSEAL_OFFLINE == 1 ]]; then args+=(--no-index); fi
    say "$name: installing into $venv"
    rm -f "$stamp"
    [[ -x $venv/bin/python ]] || "$@" "$venv"
    "$venv/bin/python" -m pip "${args[@]}"
    "$venv/bin/python" -c "$check"
    printf '%s\n' "$want" > "$stamp"
}
# checkov (deploy/aws/validate.sh): its pins conflict with the test venv's AWS SDK.
side_venv checkov "$VENV/checkov" "$VOXSEAL_ROOT/deploy/aws/requirements-checkov.txt" \
    'import checkov' "$VENV/bin/python" -m venv
# PyTorch (python/tests/test_pytorch.py): Debian's CPU-only torch through the system
# site-packages, plus the voxseal wheel's dependencies.
side_venv "torch venv" "$VENV/torch" "$VOXSEAL_ROOT/scripts/requirements-torch.txt" \
    'import torch, numpy; torch.from_numpy(numpy.zeros(2, dtype="float32"))' \
    /usr/bin/python3 -m venv --system-site-packages
say "done (base + test)"
