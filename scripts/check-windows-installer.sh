#!/usr/bin/env bash
# Proves the Windows installer works, under Wine: builds it (debug profile, a demo build, with
# ephemeral keys: scripts/dist.sh --platform windows), verifies the signed release, installs it
# silently, checks the voxseal:// registration, runs the app's --version and the installed CLI's
# `demo` in a console (tmux: colours, Ctrl-C ending the take), then uninstalls silently and checks
# that a sealed sample not yet uploaded is kept.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=check-windows-installer
cd "$VOXSEAL_ROOT"
. scripts/env.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
VOXSEAL_LOCAL_ONLY=1 VOXSEAL_EPHEMERAL_KEYS=1 VOXSEAL_KEEP_KEYS="$work/keys" \
    scripts/dist.sh --debug --platform windows --out "$work/dist"
exe="$(ls "$work"/dist/*.exe)"
[[ -f $exe.sig ]] || die "no updater signature next to $exe"
say "installer $(basename "$exe"): $(du -k "$exe" | cut -f1) KiB (debug build)"

wine() { scripts/windows.sh wine "$@"; }
# A Windows path as this machine sees it.
unix_path() { wine winepath -u "$1" 2>/dev/null | tr -d '\r'; }
reg_value() { wine reg query "$1" /ve 2>/dev/null | tr -d '\r' | sed -n 's/.*REG_SZ[[:space:]]*//p'; }

localappdata="$(wine cmd /c 'echo %LOCALAPPDATA%' 2>/dev/null | tr -d '\r')"
[[ $localappdata == *:\\* ]] || die "cannot read %LOCALAPPDATA% in the Wine prefix: $localappdata"
programs="$(unix_path "$localappdata\\Programs\\Voxseal")"
cli_data_win="$localappdata\\voxseal"
cli_data="$(unix_path "$cli_data_win")"
[[ ! -e $programs && ! -e $cli_data ]] || die "the Wine prefix already has $programs or $cli_data: remove them first"

say "silent install (/S)"
wine "$exe" /S
for f in voxseal-desktop.exe WebView2Loader.dll voxseal.exe uninstall.exe; do
    [[ -f $programs/$f ]] || die "the installer did not put $f in $programs"
done
command="$(reg_value 'HKCU\Software\Classes\voxseal\shell\open\command')"
[[ $command == "\"$localappdata\\Programs\\Voxseal\\voxseal-desktop.exe\" \"%1\"" ]] ||
    die "voxseal:// is not registered to the installed app: $command"
wine reg query 'HKCU\Software\Classes\voxseal' /v 'URL Protocol' >/dev/null 2>&1 ||
    die "the voxseal key lacks 'URL Protocol', so Windows would not treat it as a link scheme"
say "ok: installed in $programs, voxseal:// opens $command"

version="$(wine "$programs/voxseal-desktop.exe" --version 2>/dev/null | tr -d '\r' || true)"
[[ $version == "voxseal-desktop "* ]] || die "the installed app's --version says: $version"
say "the installed app runs: $version"

say "the installed voxseal.exe runs demo in a console (tmux): colours, progress, Ctrl-C ends the take"
apt_ensure tmux
demo_dir="$localappdata\\voxseal-demo-check"
tmux_sock="voxseal-wine-$$"
console() { tmux -L "$tmux_sock" "$@"; }
trap 'console kill-server 2>/dev/null; rm -rf "$work"' EXIT
# 60 s asked for; Ctrl-C once recording has run a few seconds must end the take there, then
# the demo goes on to seal and open it.
console new-session -d -x 160 -y 50 \
    "scripts/windows.sh wine '$programs/voxseal.exe' demo --seconds 60 --keep '$demo_dir'; echo DEMO-EXIT=\$?; sleep 600"
wait_pane() { # TEXT SECONDS
    local i
    for ((i = 0; i < $2 * 2; i++)); do
        console capture-pane -p -S -200 | grep -q "$1" && return 0
        sleep 0.5
    done
    console capture-pane -p -S -200 >&2
    die "no \"$1\" in the console within $2 s"
}
wait_pane "recording 60 s" 90
sleep 4
console send-keys C-c
# Without Ctrl-C the take would run on for another 50 s.
wait_pane "DEMO-EXIT=" 40
plain="$(console capture-pane -p -S -200 | tr -d '\r')"
styled="$(console capture-pane -p -e -S -200)"
printf '%s\n' "$plain" | tail -6 >&2
grep -q "DEMO-EXIT=0" <<<"$plain" || die "the demo failed after Ctrl-C"
grep -q "sealed sample" <<<"$plain" || die "Ctrl-C did not end the take for sealing"
grep -q $'\e\\[1m' <<<"$styled" || die "no bold text in the console: colours are off"
! grep -qF '[1m' <<<"$plain" || die "escape codes printed as text: the console does not interpret them"
demo_data="$(unix_path "$demo_dir")/data"
manifests=("$demo_data"/outbox/*/manifest.json)
[[ ${#manifests[@]} -eq 1 && -f ${manifests[0]} ]] || die "the demo did not leave one sealed sample in $demo_data/outbox"
seconds="$("$VOXSEAL_PYTHON" -c 'import json,sys; a = json.load(open(sys.argv[1]))["audio"]; print(round(a["take_samples"] / a["sample_rate"], 1))' "${manifests[0]}")"
"$VOXSEAL_PYTHON" -c 'import sys; sys.exit(not 1 <= float(sys.argv[1]) < 30)' "$seconds" ||
    die "the sealed take lasted $seconds s: Ctrl-C did not end it early"
say "ok: coloured output; Ctrl-C ended the 60 s take after $seconds s; the demo sealed it"
wine reg query 'HKCU\Software\Microsoft\Windows\Windows Error Reporting\ExcludedApplications' \
    /v voxseal.exe >/dev/null 2>&1 || die "voxseal.exe did not leave itself out of Windows Error Reporting"
# That workspace, one sealed sample waiting for upload, becomes the CLI's data directory.
mv "$demo_data" "$cli_data"
rm -rf "$(unix_path "$demo_dir")"
wine "$programs/voxseal.exe" --data-dir "$cli_data_win" outbox 2>&1 | tr -d '\r' | tail -3 >&2

say "silent uninstall (/S)"
wine "$programs/uninstall.exe" /S
# The uninstaller copies itself to %TEMP% and runs from there: wait for Wine's processes to end.
timeout 120 scripts/windows.sh wait ||
    die "the uninstaller did not finish within 120 s"
[[ ! -e $programs ]] || die "the uninstaller left $programs: $(ls "$programs")"
if wine reg query 'HKCU\Software\Classes\voxseal' >/dev/null 2>&1; then
    die "the uninstaller left the voxseal:// registration"
fi
if wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Voxseal' >/dev/null 2>&1; then
    die "the uninstaller left its entry in Settings > Apps"
fi
if wine reg query 'HKCU\Software\Microsoft\Windows\Windows Error Reporting\ExcludedApplications' \
    /v voxseal.exe >/dev/null 2>&1; then
    die "the uninstaller left voxseal.exe's Windows Error Reporting setting"
fi
kept="$(ls "$cli_data"/outbox/*/*.age 2>/dev/null | wc -l)"
[[ $kept -ge 1 ]] || die "the uninstaller deleted the sealed sample that was not uploaded"
say "ok: uninstalled; the unsent sealed sample ($kept payloads) is kept in $cli_data"
rm -rf "$cli_data"
