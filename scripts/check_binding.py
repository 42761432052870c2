"""Check a Voxseal manifest against the binding sealed inside one of its payloads.

The check itself is the `voxseal` Python package's (python/voxseal/binding.py); this script keeps
the README's recipe working without installing the package. Use it after decrypting (and after
checking the ciphertext's SHA-256 against `manifest["payloads"]`):

    import json, pyrage
    from check_binding import check
    manifest = json.load(open("manifest.json"))
    plain = pyrage.decrypt(open("features.safetensors.age", "rb").read(), [identity])
    check(manifest, plain)   # raises BindingMismatch naming the first differing field

As a script: python3 check_binding.py manifest.json IDENTITY_FILE PAYLOAD.age (needs pyrage);
exits 4 on a mismatch, like `voxseal open`.
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "python"))

from voxseal.binding import BindingMismatch, check  # noqa: E402

__all__ = ["BindingMismatch", "check"]


def main(argv):
    import pyrage

    manifest = json.load(open(argv[1]))
    key = next(l for l in open(argv[2]) if l.startswith("AGE-SECRET-KEY-"))
    plain = pyrage.decrypt(open(argv[3], "rb").read(), [pyrage.x25519.Identity.from_str(key.strip())])
    try:
        check(manifest, plain)
    except BindingMismatch as e:
        print(f"{argv[3]}: {e}", file=sys.stderr)
        return 4
    print(f"{argv[3]}: the manifest matches the binding sealed inside")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
