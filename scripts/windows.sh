#!/usr/bin/env bash
# Builds Voxseal for Windows (x86_64-pc-windows-gnu) on this Debian machine, and runs test
# suites as Windows executables under Wine.
#
#   scripts/windows.sh build [CARGO ARGS]   cross-build (default: -p voxseal-cli -p voxseal-broker)
#   scripts/windows.sh test  [CARGO ARGS]   build tests and run them under Wine (default: -p voxseal-core)
#   scripts/windows.sh wine  EXE [ARGS]     run a Windows executable in the project's Wine prefix
#
# Installs what it needs, idempotently: Debian's rustc-web, cargo-web and rust-web-src (1.96,
# which builds std for the target with -Zbuild-std: rustup here has no Windows std), MinGW-w64
# (linker, and the C compiler vendored C code needs) and wine64. Windows artifacts go to
# $VOXSEAL_WINDOWS_TARGET_DIR (default: $CARGO_TARGET_DIR-windows), the Wine prefix under it.
# docs/windows.md says what runs under Wine and what does not.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=windows
cd "$VOXSEAL_ROOT"
. scripts/env.sh

TARGET=x86_64-pc-windows-gnu
apt_ensure rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine64

export VOXSEAL_WINDOWS_TARGET_DIR="${VOXSEAL_WINDOWS_TARGET_DIR:-$CARGO_TARGET_DIR-windows}"
export WINEPREFIX="$VOXSEAL_WINDOWS_TARGET_DIR/wineprefix"
export WINEDEBUG=-all
WINE=/usr/lib/wine/wine64

# Debian's toolchain, not rustup's (first on PATH): std for Windows is built from its sources.
cargo_windows() {
    PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_DIR="$VOXSEAL_WINDOWS_TARGET_DIR" \
        CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
        CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$VOXSEAL_ROOT/scripts/windows.sh wine" \
        /usr/bin/cargo "$1" --target "$TARGET" -Zbuild-std "${@:2}"
}

# The Wine prefix, once: created by the first start, plus the ProcessPrng stand-in
# (scripts/wine/bcryptprimitives.c) that Wine 8 lacks and every Rust executable imports.
wine_prefix() {
    local dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
    [[ -f $dll ]] && return 0
    say "wine: creating the prefix $WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    "$WINE" wineboot --init >/dev/null 2>&1 || true
    [[ -d $WINEPREFIX/drive_c/windows/system32 ]] || die "wine did not create $WINEPREFIX"
    x86_64-w64-mingw32-gcc -O2 -shared -o "$dll.tmp" scripts/wine/bcryptprimitives.c \
        scripts/wine/bcryptprimitives.def -ladvapi32
    mv "$dll.tmp" "$dll"
}

cmd="${1:-build}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    build)
        [[ $# -gt 0 ]] || set -- -p voxseal-cli -p voxseal-broker
        say "cargo build --target $TARGET $*"
        cargo_windows build "$@"
        ;;
    test)
        [[ $# -gt 0 ]] || set -- -p voxseal-core
        wine_prefix
        say "cargo test --target $TARGET $* (under Wine)"
        # A Windows process under Wine cannot start the Linux cross-check tools (Go age, the
        # venv's Python and AWS CLI, moto): those checks say "skipped" here and run in the Linux
        # test run. With PULSE_SERVER set (scripts/test.sh), the capture tests record through
        # cpal's WASAPI host and Wine's PulseAudio driver.
        VOXSEAL_REQUIRE_TOOLS=0 cargo_windows test "$@"
        ;;
    wine)
        [[ $# -gt 0 ]] || die "usage: scripts/windows.sh wine EXE [ARGS]"
        wine_prefix
        exec "$WINE" "$@"
        ;;
    -h|--help) sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" ;;
    *) die "unknown command: $cmd (build, test, wine)" ;;
esac
