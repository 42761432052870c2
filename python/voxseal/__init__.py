"""Voxseal for the data team: read sealed samples through short-lived, scoped read sessions,
with identities unwrapped through KMS, every fetch verified and audited, and a catalogue built
from manifests without any key.

    ds = voxseal.open_dataset("s3://bucket", project="acme", purpose="training",
                              requester="ana@example.com", role_arn=TRAINING_ROLE_ARN,
                              identity_secret="voxseal/acme/training", audit_bucket=AUDIT_BUCKET)
    for sample in ds:
        sample.log_mel, sample.mfcc, sample.manifest
"""

import os
import pathlib
import urllib.parse

from . import keys
from .audit import AuditError, ReadAuditLog, client_address
from .binding import BindingMismatch
from .budget import ReadBudget, ReadBudgetExceeded
from .dataset import Dataset, Sample
from .manifest import IntegrityError
from .session import ReadSession, SessionError

__version__ = "0.1.0"
__all__ = ["open_dataset", "open_session", "Dataset", "Sample", "ReadSession", "ReadBudget",
           "ReadBudgetExceeded", "IntegrityError", "BindingMismatch", "AuditError", "SessionError", "keys"]


def bucket_of(url):
    """The bucket of an `s3://bucket` URL (no key part: the layout is fixed)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "s3" or not u.netloc or u.path not in ("", "/") or u.query or u.fragment:
        raise SessionError(f"{url!r}: give the bucket as s3://BUCKET")
    return u.netloc


def open_session(url, *, purpose, requester, role_arn=None, reason=None, contractors=None, since=None,
                 until=None, duration_s=3600, audit_bucket=None, base=None, endpoint_url=None, region_name=None):
    """A read session (STS AssumeRole of `role_arn`, or $VOXSEAL_<PURPOSE>_ROLE_ARN)."""
    role_arn = role_arn or os.environ.get(f"VOXSEAL_{purpose.upper()}_ROLE_ARN")
    if not role_arn:
        raise SessionError(f"no reader role: pass role_arn= or set VOXSEAL_{purpose.upper()}_ROLE_ARN (deploy/aws outputs it)")
    return ReadSession(bucket=bucket_of(url), role_arn=role_arn, requester=requester, purpose=purpose,
                       reason=reason, contractors=contractors, since=since, until=until, duration_s=duration_s,
                       audit_bucket=audit_bucket, base=base, endpoint_url=endpoint_url, region_name=region_name)


def default_audit_dir():
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return pathlib.Path(base) / "voxseal" / "reads"


def open_dataset(url, *, project, purpose, requester, identity=None, identity_secret=None,
                 budget=None, audit_bucket=None, audit_dir=None, strict=True, session=None, **session_args):
    """A `Dataset` of the project's samples for `purpose` ("training": features; "archive": raw
    audio, with `reason=`). The identity is unwrapped in memory from Secrets Manager through KMS
    (`identity_secret=`), or given (`identity=`, e.g. `keys.identity_from_file` in tests).
    Every fetch is audited to a local log (`audit_dir`) shipped to `audit_bucket` under `reads/`."""
    if (identity is None) == (identity_secret is None):
        raise SessionError("give exactly one of identity_secret= (production: KMS-wrapped) or identity= (tests)")
    session = session or open_session(url, purpose=purpose, requester=requester, audit_bucket=audit_bucket, **session_args)
    if identity_secret is not None:
        identity = keys.unwrap(session.client("kms"), keys.load(session.client("secretsmanager"), identity_secret),
                               project, purpose)
    directory = pathlib.Path(audit_dir) if audit_dir else default_audit_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ship = None
    if audit_bucket:
        def ship(key, body):
            session.client("s3").put_object(Bucket=audit_bucket, Key=key, Body=body, IfNoneMatch="*")
    s3 = session.client("s3")
    address = client_address(urllib.parse.urlsplit(s3.meta.endpoint_url).hostname or "s3.amazonaws.com")
    log = ReadAuditLog(directory / f"{session.name}.jsonl", project=project, session=session.name, ship=ship)

    def audit(manifest, key):
        log.append("sample.read", sample=manifest["sample_id"], contractor=manifest["contractor"], key=key,
                   requester=session.requester, purpose=session.purpose, reason=session.reason,
                   client_address=address)

    ds = Dataset(session, identity, project=project, audit=audit, budget=budget or ReadBudget(), strict=strict)
    ds.audit_log = log
    return ds
