"""Manifests as the reader meets them: parsed, checked against where they were found, and the
ciphertexts they describe checked by size and SHA-256 before anything is decrypted.

Object keys follow the bucket layout (docs/format.md, DESIGN.md):
`features/<contractor>/<yyyy>/<mm>/<dd>/<sample>-<hash>.safetensors.age`, `raw/...wav.age` and
`manifests/<contractor>/<yyyy>/<mm>/<dd>/<sample>.json`, where `<hash>` is the first 16 hex digits
of the ciphertext's SHA-256 and the date is the sealing date (UTC). The reader derives payload keys
from the manifest, never from a listing, so a stray object is never read as a sample.
"""

import datetime as _dt
import hashlib
import json
import re

SCHEMAS = ("voxseal.manifest/2",)
SAMPLE_ID = re.compile(r"^sample-[0-9a-f]{32}$")
CONTRACTOR = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_KEY = re.compile(
    r"^manifests/(?P<contractor>[a-z0-9][a-z0-9-]{2,62})/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P<sample>sample-[0-9a-f]{32})\.json$"
)
KINDS = {"raw": ("raw", "wav.age"), "features": ("features", "safetensors.age")}
# Manifests are a few KiB; a larger object under manifests/ is not one of ours.
MAX_MANIFEST_BYTES = 1 << 20


class IntegrityError(ValueError):
    """An object is not what its manifest, or its place in the bucket, says it is."""


def parse_manifest_key(key):
    """(contractor, date, sample id) of a manifest key, or None for anything else (audit
    checkpoints, stray objects)."""
    m = MANIFEST_KEY.match(key)
    if not m:
        return None
    try:
        day = _dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return None
    return m["contractor"], day, m["sample"]


def parse(data, key):
    """The manifest stored at `key`, checked: a known schema, well-formed ids, and the contractor,
    sample and sealing date that the key names. Raises IntegrityError."""
    where = parse_manifest_key(key)
    if where is None:
        raise IntegrityError(f"{key}: not a manifest key (manifests/<contractor>/<yyyy>/<mm>/<dd>/<sample>.json)")
    if len(data) > MAX_MANIFEST_BYTES:
        raise IntegrityError(f"{key}: {len(data)} bytes is too large for a manifest")
    try:
        m = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IntegrityError(f"{key}: not JSON ({e})") from None
    if not isinstance(m, dict) or m.get("schema") not in SCHEMAS:
        raise IntegrityError(f"{key}: unknown manifest schema {m.get('schema') if isinstance(m, dict) else None!r}")
    contractor, day, sample = where
    for field, pattern in (("sample_id", SAMPLE_ID), ("contractor", CONTRACTOR)):
        if not isinstance(m.get(field), str) or not pattern.match(m[field]):
            raise IntegrityError(f"{key}: `{field}` is missing or malformed")
    if m["contractor"] != contractor:
        raise IntegrityError(
            f"{key}: the manifest says contractor {m['contractor']!r} but was found under {contractor!r}"
            " (only a contractor's own session can write under its prefix): skip it"
        )
    if m["sample_id"] != sample:
        raise IntegrityError(f"{key}: the manifest is for {m['sample_id']}, not the sample its key names")
    if sealed_date(m) != day:
        raise IntegrityError(f"{key}: sealed_at {m.get('sealed_at')!r} is not the date in the key")
    payloads = m.get("payloads")
    if not isinstance(payloads, list) or not payloads:
        raise IntegrityError(f"{key}: no payloads")
    for p in payloads:
        ok = (
            isinstance(p, dict)
            and p.get("kind") in KINDS
            and isinstance(p.get("size"), int)
            and p["size"] >= 0
            and isinstance(p.get("sha256"), str)
            and SHA256.match(p["sha256"])
        )
        if not ok:
            raise IntegrityError(f"{key}: a malformed payload entry")
    return m


def sealed_date(manifest):
    """The UTC date of `sealed_at`, or None when it is not an RFC 3339 time."""
    try:
        t = _dt.datetime.fromisoformat(manifest["sealed_at"])
    except (KeyError, TypeError, ValueError):
        return None
    if t.tzinfo is None:
        return None
    return t.astimezone(_dt.timezone.utc).date()


def payload(manifest, kind):
    """The manifest's entry for the payload `kind` ("raw" or "features"), or None."""
    return next((p for p in manifest["payloads"] if p["kind"] == kind), None)


def object_key(manifest, kind):
    """The bucket key of the payload `kind`, as the uploader names it."""
    top, ext = KINDS[kind]
    p = payload(manifest, kind)
    if p is None:
        raise IntegrityError(f"{manifest['sample_id']}: the manifest lists no {kind} payload")
    date = sealed_date(manifest).strftime("%Y/%m/%d")
    return f"{top}/{manifest['contractor']}/{date}/{manifest['sample_id']}-{p['sha256'][:16]}.{ext}"


def manifest_key(manifest):
    """The bucket key of the manifest itself."""
    date = sealed_date(manifest).strftime("%Y/%m/%d")
    return f"manifests/{manifest['contractor']}/{date}/{manifest['sample_id']}.json"


def check_ciphertext(manifest, kind, data):
    """Raises IntegrityError unless `data` has the size and SHA-256 the manifest lists for it."""
    p = payload(manifest, kind)
    if p is None or len(data) != p["size"] or hashlib.sha256(data).hexdigest() != p["sha256"]:
        raise IntegrityError(
            f"{manifest['sample_id']}: the {kind} ciphertext does not match the manifest's size and SHA-256"
        )
