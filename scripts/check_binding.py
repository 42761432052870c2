"""Check a Voxseal manifest against the binding sealed inside one of its payloads.

Every field of a `voxseal.manifest/2` manifest except `payloads` and `features.frames` is also
sealed, as compact JSON, inside each payload: in the features' safetensors metadata under
`voxseal.binding`, and in the raw WAV as a RIFF chunk `vxsb` before `data`. Both are inside the
age encryption, so they are authenticated; a manifest edited after sealing, or a payload moved
in from another sample, no longer matches. Use it after decrypting (and after checking the
ciphertext's SHA-256 against `manifest["payloads"]`):

    import json, pyrage
    from check_binding import check
    manifest = json.load(open("manifest.json"))
    plain = pyrage.decrypt(open("features.safetensors.age", "rb").read(), [identity])
    check(manifest, plain)   # raises BindingMismatch naming the first differing field

As a script: python3 check_binding.py manifest.json IDENTITY_FILE PAYLOAD.age (needs pyrage);
exits 4 on a mismatch, like `voxseal open`.
"""

import json
import sys

METADATA_KEY = "voxseal.binding"
WAV_CHUNK = b"vxsb"


class BindingMismatch(ValueError):
    """The manifest says something other than what was sealed in the payload."""

    def __init__(self, field, manifest_value, sealed_value):
        self.field = field
        super().__init__(
            f"the manifest's `{field}` does not match the one sealed inside the payload "
            f"(manifest: {json.dumps(manifest_value)}, sealed: {json.dumps(sealed_value)})"
        )


def binding_of_manifest(manifest):
    """The manifest's bound fields: everything but `payloads` and `features.frames`."""
    bound = {k: v for k, v in manifest.items() if k != "payloads"}
    if isinstance(bound.get("features"), dict):
        bound["features"] = {k: v for k, v in bound["features"].items() if k != "frames"}
    return bound


def sealed_binding(plain):
    """The binding inside a decrypted payload (WAV or safetensors bytes), or None."""
    if plain[:4] == b"RIFF" and plain[8:12] == b"WAVE":
        pos = 12
        while pos + 8 <= len(plain):
            cid, size = plain[pos:pos + 4], int.from_bytes(plain[pos + 4:pos + 8], "little")
            if cid == WAV_CHUNK:
                return json.loads(plain[pos + 8:pos + 8 + size])
            if cid == b"data":
                return None
            pos += 8 + size + (size & 1)
        return None
    n = int.from_bytes(plain[:8], "little")
    header = json.loads(plain[8:8 + n])
    text = header.get("__metadata__", {}).get(METADATA_KEY)
    return None if text is None else json.loads(text)


def _first_difference(sealed, stated, path=""):
    if isinstance(sealed, dict) and isinstance(stated, dict):
        for k in sorted(set(sealed) | set(stated)):
            p = f"{path}.{k}" if path else k
            if k not in sealed or k not in stated:
                return p
            d = _first_difference(sealed[k], stated[k], p)
            if d:
                return d
        return None
    return None if sealed == stated else (path or "(the whole manifest)")


def _at(value, path):
    for k in path.split("."):
        value = value.get(k) if isinstance(value, dict) else None
    return value


def check(manifest, plain):
    """Raises BindingMismatch unless `plain` (a decrypted payload) was sealed with `manifest`.

    Returns True when checked; False for a `voxseal.manifest/1` manifest whose payload predates
    the binding (nothing to check beyond the ciphertext's SHA-256)."""
    sealed = sealed_binding(plain)
    if sealed is None and manifest.get("schema") == "voxseal.manifest/1":
        return False
    if sealed is None:
        raise BindingMismatch("schema", manifest.get("schema"), None)
    stated = binding_of_manifest(manifest)
    field = _first_difference(sealed, stated)
    if field:
        raise BindingMismatch(field, _at(stated, field), _at(sealed, field))
    return True


def main(argv):
    import pyrage

    manifest = json.load(open(argv[1]))
    key = next(l for l in open(argv[2]) if l.startswith("AGE-SECRET-KEY-"))
    plain = pyrage.decrypt(open(argv[3], "rb").read(), [pyrage.x25519.Identity.from_str(key.strip())])
    try:
        bound = check(manifest, plain)
    except BindingMismatch as e:
        print(f"{argv[3]}: {e}", file=sys.stderr)
        return 4
    if bound:
        print(f"{argv[3]}: the manifest matches the binding sealed inside")
    else:
        print(f"{argv[3]}: schema 1 manifest, sealed before payloads carried a binding")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
