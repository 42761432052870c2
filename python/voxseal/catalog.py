"""The catalogue: one row per sample, built from manifests alone (no key, nothing decrypted), as
a Parquet table the data team selects from with SQL or pandas before reading any payload."""

import os
import tempfile

from . import manifest as manifests

COLUMNS = [
    ("sample", "string"), ("contractor", "string"), ("project", "string"), ("prompt", "string"),
    ("supersedes", "string"), ("recorded_at", "string"), ("sealed_at", "string"),
    ("duration_s", "float64"), ("take_duration_s", "float64"), ("source_sample_rate", "int64"),
    ("quality", "string"), ("accepted_despite", "list<string>"), ("consent_sha256", "string"),
    ("config_sha256", "string"), ("features_only", "bool"), ("manifest_key", "string"),
    ("features_key", "string"), ("features_size", "int64"), ("raw_key", "string"), ("raw_size", "int64"),
    ("app_version", "string"),
]


def row(m, key):
    """A manifest's catalogue row."""
    audio, quality = m.get("audio") or {}, m.get("quality") or {}
    rate = audio.get("sample_rate")
    take = audio.get("take_samples")

    def payload_key(kind):
        return manifests.object_key(m, kind) if manifests.payload(m, kind) else None

    def size(kind):
        p = manifests.payload(m, kind)
        return p["size"] if p else None

    return {
        "sample": m["sample_id"], "contractor": m["contractor"], "project": m.get("project"),
        "prompt": m.get("prompt_id"), "supersedes": m.get("supersedes"), "recorded_at": m.get("recorded_at"),
        "sealed_at": m.get("sealed_at"), "duration_s": audio.get("duration_s"),
        "take_duration_s": take / rate if take and rate else None, "source_sample_rate": rate,
        "quality": quality.get("overall"),
        "accepted_despite": [str(a) if not isinstance(a, dict) else a.get("name", str(a)) for a in m.get("accepted_despite") or []],
        "consent_sha256": (m.get("consent") or {}).get("text_sha256"), "config_sha256": m.get("config_sha256"),
        "features_only": bool(m.get("features_only")), "manifest_key": key,
        "features_key": payload_key("features"), "features_size": size("features"),
        "raw_key": payload_key("raw"), "raw_size": size("raw"), "app_version": m.get("app_version"),
    }


def table(rows):
    """A pyarrow Table of catalogue rows, with the fixed schema."""
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(),
             "list<string>": pa.list_(pa.string())}
    schema = pa.schema([(name, types[t]) for name, t in COLUMNS])
    return pa.Table.from_pylist(list(rows), schema=schema)


def write(rows, path):
    """Writes the catalogue to `path` (Parquet) atomically: a temp file, fsync, rename."""
    import pyarrow.parquet as pq

    t = table(rows)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".catalog-", suffix=".parquet", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(t, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return t.num_rows


def build(session, project, path):
    """Builds the catalogue of `project` from the manifests a read session can list (a `catalog`
    session needs no key and reads no payload) and writes it to `path`. Returns (rows written,
    [(key, reason) for manifests that failed their checks and were left out])."""
    from .dataset import Manifests

    index, skipped = Manifests(session, project), []

    def rows():
        for key in index.keys():
            try:
                yield row(index.get(key), key)
            except manifests.IntegrityError as e:
                skipped.append((key, str(e)))

    return write(rows(), path), skipped
