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

say "the pinned build holds no demo stack (dependency tree and binary)"
tree_has_localstack() {
    cargo tree -p voxseal-desktop -e normal --prefix none "$@" 2>/dev/null | grep -c '^voxseal-localstack ' || true
}
[[ $(tree_has_localstack) -ge 1 ]] || die "the check is broken: the demo build's tree has no voxseal-localstack"
[[ $(tree_has_localstack --no-default-features) -eq 0 ]] || die "the release build's dependency tree contains voxseal-localstack"
pinned_bin="$CARGO_TARGET_DIR/debug/voxseal-desktop"
[[ $(grep -c 'voxseal_localstack' "$pinned_bin" || true) -eq 0 ]] || die "the pinned binary contains voxseal_localstack code"
[[ $(grep -c 'voxseal_app' "$pinned_bin" || true) -ge 1 ]] || die "the check is broken: no voxseal_app symbols in $pinned_bin"
say "ok: no voxseal-localstack in the pinned build; .deb $(du -k "$deb" | cut -f1) KiB"

say "no C crypto library: no openssl-sys in the shipped binaries' trees, no libssl in the .deb"
for pkg in voxseal-desktop voxseal-cli voxseal-broker; do
    tree="$(cargo tree -p "$pkg" -e normal --prefix none)"
    grep -q '^voxseal-core ' <<<"$tree" || die "the check is broken: $pkg's tree has no voxseal-core"
    ! grep -q '^openssl-sys ' <<<"$tree" || die "$pkg links OpenSSL again (sealing is meant to be pure Rust)"
done
depends="$(dpkg-deb -f "$deb" Depends)"
[[ $depends == *libasound2* ]] || die "the check is broken: the .deb's Depends lacks libasound2: $depends"
[[ $depends != *libssl* ]] || die "the .deb still depends on libssl: $depends"

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
