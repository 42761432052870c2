#!/usr/bin/env bash
# Builds the signed installers (Linux: .deb, .rpm; Windows: the NSIS .exe, cross-built by
# scripts/windows.sh) with Tauri's updater signatures, writes SHA256SUMS and signs it with the
# project lead's key, then verifies the result.
#
#   scripts/dist.sh [--debug] [--out DIR] [--platform linux|windows|all]   (default: linux)
#
# Environment:
#   VOXSEAL_LEAD_PUBKEY         lead public key pinned into the app (base64 line of lead.pub);
#   VOXSEAL_LOCAL_ONLY=1        or a demo build that only runs the local stack, pins nothing (the
#                               lead key then only signs SHA256SUMS)
#   VOXSEAL_LEAD_KEY            path to the lead secret key (signs SHA256SUMS);
#                               VOXSEAL_LEAD_KEY_PASSWORD if it is password-protected
#   TAURI_SIGNING_PRIVATE_KEY   Tauri updater signing key (`tauri signer generate`), with
#                               TAURI_SIGNING_PRIVATE_KEY_PASSWORD and VOXSEAL_UPDATER_PUBKEY (its public key)
#   VOXSEAL_UPDATE_URL          the updater endpoint (default https://updates.invalid/voxseal/{{target}}/{{current_version}})
#   VOXSEAL_EPHEMERAL_KEYS=1    generate throwaway lead and updater keys (CI: proves the pipeline, signs nothing real);
#                               VOXSEAL_KEEP_KEYS=<dir> keeps them there
#
# macOS (dmg, notarized) builds run the same steps on a macOS runner; see docs/release.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VOXSEAL_LOG_TAG=dist
cd "$VOXSEAL_ROOT"

profile=release
out="$VOXSEAL_ROOT/dist"
platform=linux
while [[ $# -gt 0 ]]; do
    case "$1" in
        --debug) profile=debug ;;
        --out) out="$2"; shift ;;
        --platform) platform="$2"; shift ;;
        -h|--help) sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done
[[ $platform =~ ^(linux|windows|all)$ ]] || die "--platform: linux, windows or all, not $platform"

scripts/setup.sh
. scripts/env.sh
TAURI=(npx --yes @tauri-apps/cli@2.12.5)

keys_dir=""
if [[ ${VOXSEAL_EPHEMERAL_KEYS:-0} == 1 ]]; then
    if [[ -n ${VOXSEAL_KEEP_KEYS:-} ]]; then
        keys_dir="$VOXSEAL_KEEP_KEYS"
        mkdir -p "$keys_dir"
    else
        keys_dir="$(mktemp -d)"
        trap 'rm -rf "$keys_dir"' EXIT
    fi
    say "ephemeral keys in $keys_dir (CI: nothing here is a real release)"
    cargo build --quiet -p voxseal-cli
    # A project needs prompts and a consent text; these only exist to make the ephemeral lead key.
    printf 'Say hello.\n' >"$keys_dir/prompts.txt"
    printf 'Ephemeral dist-check project; nothing is recorded for it.\n' >"$keys_dir/consent.txt"
    "$CARGO_TARGET_DIR/debug/voxseal" project init "$keys_dir/project" --name dist-check --no-password \
        --prompts "$keys_dir/prompts.txt" --consent "$keys_dir/consent.txt" >/dev/null
    export VOXSEAL_LEAD_KEY="$keys_dir/project/keys/lead.key"
    export VOXSEAL_LEAD_PUBKEY="$(grep -v '^untrusted comment' "$keys_dir/project/lead.pub" | head -1)"
    export TAURI_SIGNING_PRIVATE_KEY_PASSWORD="ephemeral-$RANDOM$RANDOM"
    "${TAURI[@]}" signer generate --ci -p "$TAURI_SIGNING_PRIVATE_KEY_PASSWORD" -w "$keys_dir/updater.key" >/dev/null
    export TAURI_SIGNING_PRIVATE_KEY="$(cat "$keys_dir/updater.key")"
    export VOXSEAL_UPDATER_PUBKEY="$(cat "$keys_dir/updater.key.pub")"
fi
[[ -n ${VOXSEAL_LEAD_PUBKEY:-} || ${VOXSEAL_LOCAL_ONLY:-0} == 1 ]] || die "set VOXSEAL_LEAD_PUBKEY (or VOXSEAL_LOCAL_ONLY=1, or VOXSEAL_EPHEMERAL_KEYS=1)"
[[ -n ${VOXSEAL_LEAD_KEY:-} ]] || die "set VOXSEAL_LEAD_KEY to the lead secret key that signs SHA256SUMS"
[[ -n ${TAURI_SIGNING_PRIVATE_KEY:-} && -n ${VOXSEAL_UPDATER_PUBKEY:-} ]] || die "set TAURI_SIGNING_PRIVATE_KEY and VOXSEAL_UPDATER_PUBKEY (tauri signer generate)"
# A build with a pinned lead key never contains the demo stack (src-tauri/build.rs refuses it).
pinned=0
[[ -n ${VOXSEAL_LEAD_PUBKEY:-} && ${VOXSEAL_LOCAL_ONLY:-0} != 1 ]] && pinned=1
rm -rf "$out"
mkdir -p "$out"

build_ui --silent

update_url="${VOXSEAL_UPDATE_URL:-https://updates.invalid/voxseal/{{target}}/{{current_version}}}"
# The app reads both at build time (src-tauri/src/update.rs): the key is pinned, the URL the default.
export VOXSEAL_UPDATE_URL="$update_url" VOXSEAL_UPDATER_PUBKEY
config=$(printf '{"bundle":{"active":true,"createUpdaterArtifacts":true},"plugins":{"updater":{"pubkey":"%s","endpoints":["%s"]}}}' \
    "$VOXSEAL_UPDATER_PUBKEY" "$update_url")
if [[ $platform != windows ]]; then
    args=(build --bundles deb rpm --config "$config" --ci)
    [[ $profile == debug ]] && args+=(--debug)
    build_env=()
    if [[ $pinned == 1 ]]; then
        args+=(-- --no-default-features --features pinned)
    else
        build_env=(-u VOXSEAL_LEAD_PUBKEY VOXSEAL_LOCAL_ONLY=1)
    fi
    say "tauri ${args[*]:0:3} ($profile)"
    (cd src-tauri && env "${build_env[@]}" "${TAURI[@]}" "${args[@]}")
    bundle="$CARGO_TARGET_DIR/$profile/bundle"
    cp "$bundle"/deb/*.deb "$bundle"/deb/*.deb.sig "$bundle"/rpm/*.rpm "$bundle"/rpm/*.rpm.sig "$out"/
fi
if [[ $platform != linux ]]; then
    win_args=(--out "$out")
    [[ $profile == release ]] && win_args+=(--release)
    exe="$(TAURI_CONFIG="$config" scripts/windows.sh installer "${win_args[@]}")"
    version="${exe##*/Voxseal_}"
    version="${version%_x64.exe}"
    # For that version, as the updater's requireSignedVersion checks (tests/e2e/tests/updater.rs).
    say "updater signature for $(basename "$exe") (version $version)"
    "${TAURI[@]}" signer sign --app-version "$version" "$exe" >/dev/null
fi
say "signing SHA256SUMS with the lead key"
"$CARGO_TARGET_DIR/debug/voxseal" sign-release "$out" --key "$VOXSEAL_LEAD_KEY" 2>/dev/null || {
    cargo build --quiet -p voxseal-cli
    "$CARGO_TARGET_DIR/debug/voxseal" sign-release "$out" --key "$VOXSEAL_LEAD_KEY"
}
lead_pub="$(mktemp)"
printf 'untrusted comment: lead key\n%s\n' "${VOXSEAL_LEAD_PUBKEY%%,*}" > "$lead_pub"
"$CARGO_TARGET_DIR/debug/voxseal" verify-release "$out" --lead-pub "$lead_pub" --updater-pubkey "$VOXSEAL_UPDATER_PUBKEY"
rm -f "$lead_pub"
ls -la "$out" >&2
say "done: $out"
