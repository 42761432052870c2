# shellcheck shell=bash
# Shared helpers for Voxseal's scripts. Source it, do not run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Defines: VOXSEAL_ROOT, say, die, have, need_root_or_sudo, as_root, build_ui,
#          apt_missing, apt_ensure.

# Repository root: the parent of the directory holding this file (works in a
# plain copy of the tree too, without git).
# shellcheck disable=SC2034  # used by the scripts that source this file
VOXSEAL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# One log line, to stderr so scripts can keep stdout for data.
say() { printf '[%s] %s\n' "${VOXSEAL_LOG_TAG:-voxseal}" "$*" >&2; }

die() { say "error: $*"; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# Sets SUDO to the command prefix needed for root actions: nothing when
# already root, "sudo" when it exists; otherwise fails with a message.
SUDO=()
need_root_or_sudo() {
    if [[ ${EUID:-$(id -u)} -eq 0 ]]; then
        SUDO=()
    elif have sudo; then
        SUDO=(sudo)
    else
        die "need root for this step (not root, and sudo is not installed)"
    fi
}

as_root() { need_root_or_sudo; "${SUDO[@]}" "$@"; }

# Prints (one per line) the given Debian packages that are not installed.
apt_missing() {
    local p status
    for p in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
        [[ $status == "install ok installed" ]] || printf '%s\n' "$p"
    done
}

# Installs the given Debian packages that are missing; touches nothing (and
# the network not at all) when all are there. `apt-get update` runs once per
# process, only when an install is needed. With VOXSEAL_OFFLINE=1 a needed
# install is an error instead.
_VOXSEAL_APT_UPDATED=0
apt_ensure() {
    local missing
    mapfile -t missing < <(apt_missing "$@")
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "apt: all $# packages present ($*)"
        return 0
    fi
    if [[ ${VOXSEAL_OFFLINE:-0} == 1 ]]; then
        die "apt: missing ${missing[*]} and --offline was given"
    fi
    need_root_or_sudo
    if [[ $_VOXSEAL_APT_UPDATED -eq 0 ]]; then
        say "apt: apt-get update (needed for: ${missing[*]})"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _VOXSEAL_APT_UPDATED=1
    fi
    say "apt: installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds the front end into ui/dist (npm ci from the committed lock file, then vite). The desktop
# crate embeds ui/dist at compile time, so this must run before anything compiles src-tauri,
# including `cargo clippy --workspace`. Extra arguments go to both npm calls (e.g. --silent).
build_ui() {
    say "front end: npm ci && npm run build"
    npm --prefix "$VOXSEAL_ROOT/ui" ci --no-audit --no-fund "$@"
    npm --prefix "$VOXSEAL_ROOT/ui" run build "$@"
}
