#!/usr/bin/env bash
# Proves the installers work: builds them (debug profile, ephemeral keys), installs the .deb on
# this machine, runs the installed binary's --version, removes it, and checks that tampered
# artifacts are refused by `voxseal verify-release` (checksums) and by the updater signatures.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=check-dist
cd "$VOXSEAL_ROOT"
. scripts/env.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
VOXSEAL_EPHEMERAL_KEYS=1 VOXSEAL_KEEP_KEYS="$work/keys" scripts/dist.sh --debug --out "$work/dist"
voxseal="$CARGO_TARGET_DIR/debug/voxseal"
deb="$(ls "$work"/dist/*.deb)"
lead_pub="$work/keys/project/lead.pub"
updater_pub="$(cat "$work/keys/updater.key.pub")"

say "installing $(basename "$deb") on this machine"
need_root_or_sudo
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
version="$(voxseal-desktop --version)"
"${SUDO[@]}" dpkg -r voxseal >/dev/null
[[ $version == "voxseal-desktop 0.1.0" ]] || die "installed binary says: $version"
say "installed package runs: $version (and was removed again)"

say "a changed installer must be refused"
cp -r "$work/dist" "$work/tampered"
printf 'X' | dd of="$(ls "$work"/tampered/*.deb)" bs=1 seek=4096 conv=notrunc 2>/dev/null
if "$voxseal" verify-release "$work/tampered" --lead-pub "$lead_pub" --updater-pubkey "$updater_pub"; then
    die "a tampered .deb verified"
fi
say "... and an installer whose checksum list was re-signed (a stolen lead key) still fails the updater signature"
"$voxseal" sign-release "$work/tampered" --key "$work/keys/project/keys/lead.key" >/dev/null
if "$voxseal" verify-release "$work/tampered" --lead-pub "$lead_pub" --updater-pubkey "$updater_pub"; then
    die "a tampered .deb passed the updater signature check"
fi
say "ok: install works, tampering refused"
