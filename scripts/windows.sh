#!/usr/bin/env bash
# Builds Voxseal for Windows (x86_64-pc-windows-gnu) on this Debian machine, and runs test
# suites as Windows executables under Wine.
#
#   scripts/windows.sh build [CARGO ARGS]   cross-build (default: -p voxseal-cli -p voxseal-broker)
#   scripts/windows.sh test  [CARGO ARGS]   build tests and run them under Wine (default: the suites
#                                           .ci/run runs: core, cloud, CLI, broker, app logic)
#   scripts/windows.sh wine  EXE [ARGS]     run a Windows executable in the project's Wine prefix
#   scripts/windows.sh setup                install the tools and create the Wine prefix (idempotent)
#   scripts/windows.sh wait                 wait until every process in the Wine prefix has ended
#   scripts/windows.sh installer [--release] [--out DIR] [--build-only]
#                                           build the app and the CLI and their NSIS installer
#                                           (src-tauri/windows/installer.nsi) into DIR (default dist/);
#                                           pinned to VOXSEAL_LEAD_PUBKEY unless VOXSEAL_LOCAL_ONLY=1;
#                                           TAURI_CONFIG (JSON) is merged into tauri.conf.json; a debug
#                                           demo build also builds the default test suites
#
# Installs what it needs, idempotently: Debian's rustc-web, cargo-web and rust-web-src (1.96,
# which builds std for the target with -Zbuild-std: rustup here has no Windows std), MinGW-w64
# (linker, and the C compiler vendored C code needs), lld, wine64 and nsis (makensis). Windows artifacts go to
# $VOXSEAL_WINDOWS_TARGET_DIR (default: $CARGO_TARGET_DIR-windows), the Wine prefix under it.
# docs/windows.md says what runs under Wine and what does not.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=windows
cd "$VOXSEAL_ROOT"
. scripts/env.sh

TARGET=x86_64-pc-windows-gnu
# (Not for `wine` and `wait`: cargo runs every test executable through `wine`, after a build
# that has checked already.)
case "${1:-build}" in
    wine|wait) ;;
    *) apt_ensure rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 lld wine64 nsis ;;
esac

export VOXSEAL_WINDOWS_TARGET_DIR="${VOXSEAL_WINDOWS_TARGET_DIR:-$CARGO_TARGET_DIR-windows}"
export WINEPREFIX="$VOXSEAL_WINDOWS_TARGET_DIR/wineprefix"
export WINEDEBUG=-all
WINE=/usr/lib/wine/wine64

# Debian's toolchain, not rustup's (first on PATH): std for Windows is built from its sources.
# No debug info and no incremental state by default: a panic still names its file and line, and
# the builds (mostly from scratch in CI) are faster and smaller. Debug builds optimise the
# dependencies the tests feel as the Linux build does (Cargo.toml: crypto and DSP), and the
# standard library built here at opt-level 1, and link with LLD (Debian's lld, through MinGW's
# gcc), which links the large test executables in a fraction of GNU ld's time.
STD_OPT=()
for crate in std core alloc compiler_builtins; do
    STD_OPT+=(--config "profile.dev.package.$crate.opt-level=1")
done
cargo_windows() {
    PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}" CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}" \
        CARGO_TARGET_DIR="$VOXSEAL_WINDOWS_TARGET_DIR" \
        CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
        CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-C link-arg=-fuse-ld=lld" \
        CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$VOXSEAL_ROOT/scripts/windows.sh wine" \
        /usr/bin/cargo "${STD_OPT[@]}" "$1" --target "$TARGET" -Zbuild-std "${@:2}"
}

# The default test suites, resolved together with the installer's app: one feature resolution, so
# that the debug demo installer (the one .ci/run checks) and the test executables share every
# dependency's build instead of building ~170 crates twice. VOXSEAL_LOCAL_ONLY=1 as for a demo app.
SUITES=(-p voxseal-core -p voxseal-cloud -p voxseal-cli -p voxseal-broker -p voxseal-app
    -p voxseal-desktop --features voxseal-desktop/custom-protocol)
suites() { VOXSEAL_LOCAL_ONLY=1 cargo_windows "$1" "${SUITES[@]}" "${@:2}"; }

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

# The installer: the app (assets in the binary: custom-protocol) and the CLI, built as a release
# would be (pinned, or a demo build), then makensis. Prints the installer's path on stdout.
installer() {
    local profile=debug out="$VOXSEAL_ROOT/dist" build_only=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --release) profile=release ;;
            --out) out="$2"; shift ;;
            --build-only) build_only=1 ;;
            *) die "installer: unknown argument $1 (--release, --out DIR, --build-only)" ;;
        esac
        shift
    done
    local flags=()
    [[ $profile == release ]] && flags+=(--release)
    if [[ -n ${VOXSEAL_LEAD_PUBKEY:-} && ${VOXSEAL_LOCAL_ONLY:-0} != 1 ]]; then
        say "installer: a release for the project whose lead key is pinned ($profile)"
        cargo_windows build "${flags[@]}" -p voxseal-desktop --no-default-features \
            --features pinned,custom-protocol
        cargo_windows build "${flags[@]}" -p voxseal-cli --features pinned
    else
        say "installer: a demo build, no lead key pinned ($profile)"
        (
            # No updater in a demo build: its config would only make the build differ.
            unset VOXSEAL_LEAD_PUBKEY TAURI_CONFIG
            export VOXSEAL_LOCAL_ONLY=1
            if [[ $profile == debug ]]; then
                suites build --bins --tests
            else
                cargo_windows build "${flags[@]}" -p voxseal-desktop -p voxseal-cli \
                    --features voxseal-desktop/custom-protocol
            fi
        )
    fi
    [[ $build_only == 1 ]] && return 0
    local version bin="$VOXSEAL_WINDOWS_TARGET_DIR/$TARGET/$profile"
    version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' src-tauri/tauri.conf.json)"
    [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no x.y.z version in src-tauri/tauri.conf.json"
    # "setup" or "install" in the name would make Windows apply installer-detection shims.
    local exe="$out/Voxseal_${version}_x64.exe"
    mkdir -p "$out"
    makensis -V2 -WX -DVERSION="$version" -DBINDIR="$bin" -DICON="$VOXSEAL_ROOT/icons/icon.ico" \
        -DOUTFILE="$exe" src-tauri/windows/installer.nsi >&2
    say "installer: $exe ($(du -k "$exe" | cut -f1) KiB)"
    echo "$exe"
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
        wine_prefix
        if [[ $# -eq 0 || $1 == --* ]]; then
            say "cargo test --target $TARGET (the default suites) $* (under Wine)"
            VOXSEAL_REQUIRE_TOOLS=0 suites test "$@"
            exit
        fi
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
    setup) wine_prefix ;;
    wait)
        # Until every process in the prefix has ended (an uninstaller runs on from a copy).
        exec /usr/lib/wine/wineserver -w
        ;;
    installer) installer "$@" ;;
    -h|--help) sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" ;;
    *) die "unknown command: $cmd (build, test, wine, setup, wait, installer)" ;;
esac
