"""Resealed copies of a real sealed sample, for tests at scale: sealing 10,000 takes with the
CLI's debug build would take most of an hour (docs/reliability.md measured 193 s for 1,000). A copy
gets a new sample id (and contractor), its binding updated inside the features, re-encrypted to
the same training recipient, with a manifest whose hashes and sizes match. It is features-only
(the raw payload is not copied). The reader verifies copies exactly as it verifies originals."""

import copy
import hashlib
import json
import secrets

import pyrage
from safetensors.numpy import load, save

from voxseal.binding import binding_of_manifest
from voxseal.manifest import manifest_key, object_key


def reseal(manifest, features_plain, recipient, contractor):
    """(manifest, features ciphertext) of a copy of a sample for `contractor`."""
    m = copy.deepcopy(manifest)
    m["sample_id"] = "sample-" + secrets.token_hex(16)
    m["take_id"] = "take-" + secrets.token_hex(16)
    m["contractor"] = contractor
    m["features_only"] = True
    m["payloads"] = [p for p in m["payloads"] if p["kind"] == "features"]
    header_len = int.from_bytes(features_plain[:8], "little")
    meta = json.loads(features_plain[8:8 + header_len])["__metadata__"]
    meta = dict(meta, sample_id=m["sample_id"])
    meta["voxseal.binding"] = json.dumps(binding_of_manifest(m), sort_keys=True, separators=(",", ":"))
    sealed = pyrage.encrypt(save(load(features_plain), metadata=meta), [recipient])
    m["payloads"][0].update(size=len(sealed), sha256=hashlib.sha256(sealed).hexdigest())
    return m, sealed


def upload(s3, bucket, manifest, sealed):
    s3.put_object(Bucket=bucket, Key=object_key(manifest, "features"), Body=sealed)
    s3.put_object(Bucket=bucket, Key=manifest_key(manifest), Body=json.dumps(manifest).encode())
