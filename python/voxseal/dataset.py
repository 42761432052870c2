"""A dataset of sealed samples read through a read session: each sample's manifest is checked,
its ciphertext checked against the manifest, charged to the budget, audited, decrypted in memory
and checked against the binding sealed inside it. No plaintext touches disk."""

import dataclasses
import io
import wave

import pyrage
from safetensors.numpy import load as load_safetensors

from . import manifest as manifests
from .binding import check as check_binding

PAYLOAD_KIND = {"training": "features", "archive": "raw"}


@dataclasses.dataclass(frozen=True)
class Sample:
    """One verified, decrypted sample. Training: `log_mel` [frames, 80] and `mfcc` [frames, 13]
    (float32). Archive: `wav` (the WAV bytes) and `audio` (int16 samples) at `sample_rate`."""

    sample_id: str
    contractor: str
    manifest: dict
    log_mel: object = None
    mfcc: object = None
    wav: bytes = None
    audio: object = None
    sample_rate: int = None


class Manifests:
    """The manifests a read session can list (any purpose, catalogue included), checked."""

    def __init__(self, session, project):
        self.session, self.project = session, project

    def keys(self):
        """The keys of the manifests in the session's selection."""
        s3 = self.session.client("s3")
        prefixes = [f"manifests/{c}/" for c in self.session.contractors] if self.session.contractors else ["manifests/"]
        for prefix in prefixes:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.session.bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    where = manifests.parse_manifest_key(obj["Key"])
                    if where and self.session.in_scope(where[0], where[1]):
                        yield obj["Key"]

    def get(self, key):
        """The parsed, checked manifest at `key` (manifests are not biometric: not audited)."""
        body = self.session.client("s3").get_object(Bucket=self.session.bucket, Key=key)["Body"].read()
        m = manifests.parse(body, key)
        if m.get("project") != self.project:
            raise manifests.IntegrityError(f"{key}: a manifest of project {m.get('project')!r}, not {self.project!r}")
        return m


class Dataset:
    """Iterating yields `Sample`s in key order. `manifests()` lists what is in scope without
    decrypting anything."""

    def __init__(self, session, identity, *, project, audit, budget, strict=True):
        if session.purpose not in PAYLOAD_KIND:
            raise ValueError(f"a {session.purpose} session reads no payloads: use a training or archive session")
        self.session, self.project = session, project
        self.index = Manifests(session, project)
        self._identity, self._audit, self.budget = identity, audit, budget
        self.kind = PAYLOAD_KIND[session.purpose]
        self.strict = strict
        self.skipped = []

    def manifests(self, share=(0, 1)):
        """Every checked manifest in scope (or, with `share=(i, n)`, every n-th from the i-th, in
        listing order: a disjoint part for each of n readers). One that fails its checks raises
        IntegrityError, or with `strict=False` is listed in `skipped` as (key, reason)."""
        part, parts = share
        if not 0 <= part < parts:
            raise ValueError(f"share {share!r}: need 0 <= i < n")
        for i, key in enumerate(self.index.keys()):
            if i % parts != part:
                continue
            try:
                yield self.index.get(key)
            except manifests.IntegrityError as e:
                self._skip(key, e)

    def fetch(self, m):
        """The sample of a checked manifest: budget, audit, GET, size and SHA-256, decrypt, binding."""
        p = manifests.payload(m, self.kind)
        if p is None:
            raise manifests.IntegrityError(f"{m['sample_id']}: a features-only sample has no raw audio")
        key = manifests.object_key(m, self.kind)
        self.budget.charge(m["sample_id"], p["size"])
        self._audit(m, key)
        sealed = self.session.client("s3").get_object(Bucket=self.session.bucket, Key=key)["Body"].read()
        manifests.check_ciphertext(m, self.kind, sealed)
        plain = pyrage.decrypt(sealed, [self._identity])
        check_binding(m, plain)
        if self.kind == "features":
            t = load_safetensors(plain)
            return Sample(m["sample_id"], m["contractor"], m, log_mel=t["log_mel"], mfcc=t["mfcc"])
        import numpy as np

        with wave.open(io.BytesIO(plain)) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            rate = w.getframerate()
        return Sample(m["sample_id"], m["contractor"], m, wav=plain, audio=audio, sample_rate=rate)

    audit_log = None

    def close(self):
        """Ships the audit records still pending (raises AuditError if they cannot be)."""
        if self.audit_log:
            self.audit_log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _skip(self, key, error):
        if self.strict:
            raise error
        self.skipped.append((key, str(error)))

    def __iter__(self):
        return self.samples()

    def samples(self, share=(0, 1)):
        """The verified samples in scope, or a disjoint share of them (see `manifests`)."""
        for m in self.manifests(share):
            try:
                sample = self.fetch(m)
            except ValueError as e:  # IntegrityError, BindingMismatch
                self._skip(m["sample_id"], e)
                continue
            yield sample
        if self.audit_log:
            self.audit_log.flush()
