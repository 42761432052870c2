"""The binding: a Voxseal manifest's fields sealed inside each of its payloads.

Every field of a `voxseal.manifest/2` manifest except `payloads` and `features.frames` is also
sealed, as compact JSON, inside each payload: in the features' safetensors metadata under
`voxseal.binding`, and in the raw WAV as a RIFF chunk `vxsb` before `data`. Both are inside the
age encryption, so they are authenticated; a manifest edited after sealing, or a payload moved
in from another sample, no longer matches (docs/format.md).
"""

import json

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
    """Raises BindingMismatch unless `plain` (a decrypted payload) was sealed with `manifest`."""
    sealed = sealed_binding(plain)
    if sealed is None:
        raise BindingMismatch("schema", manifest.get("schema"), None)
    stated = binding_of_manifest(manifest)
    field = _first_difference(sealed, stated)
    if field:
        raise BindingMismatch(field, _at(stated, field), _at(sealed, field))
