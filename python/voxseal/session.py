"""Short-lived, scoped read sessions: STS AssumeRole into a reader role, at most one hour, with a
session policy that narrows the role to one purpose's prefixes (and optionally some contractors
or dates), and with the requester as source identity and the purpose as session tags, so that
every S3 GET and KMS Decrypt in CloudTrail names who read and why.

Purposes:
- `training`: `features/` and `manifests/` (the training reader role);
- `archive`: `raw/` and `manifests/` (the archive reader role), with a stated reason;
- `catalog`: `manifests/` only (no payloads, no keys).
"""

import datetime as _dt
import json
import re
import secrets
import threading

import boto3

PAYLOAD_PREFIX = {"training": "features", "archive": "raw", "catalog": None}
MAX_DURATION_S = 3600
MIN_DURATION_S = 900
# Sessions are renewed this long before they expire.
REFRESH_MARGIN_S = 300
# STS refuses session policies longer than this (plain text, before packing).
MAX_POLICY_CHARS = 2048
# STS's character sets: source identity, and session tag values.
REQUESTER = re.compile(r"^[\w+=,.@-]{2,64}$")
REASON = re.compile(r"^[\w .:/=+@-]{3,256}$")
CONTRACTOR = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TAG_PURPOSE = "voxseal-purpose"
TAG_REQUESTER = "voxseal-requester"
TAG_REASON = "voxseal-reason"


class SessionError(ValueError):
    """A read session cannot be opened as asked; the message says what to change."""


def validate(purpose, requester, reason, contractors, since, until):
    if purpose not in PAYLOAD_PREFIX:
        raise SessionError(f"purpose {purpose!r}: use one of {', '.join(PAYLOAD_PREFIX)}")
    if not isinstance(requester, str) or not REQUESTER.match(requester):
        raise SessionError(
            "requester: 2-64 characters of letters, digits and + = , . @ _ - (e.g. your e-mail address)"
        )
    if purpose == "archive" and not reason:
        raise SessionError("archive sessions need a reason: say why raw audio is read (e.g. reason='relabel batch 7')")
    if reason is not None and (not isinstance(reason, str) or not REASON.match(reason)):
        raise SessionError("reason: 3-256 characters of letters, digits, spaces and _ . : / = + @ -")
    validate_contractors(contractors)
    if until and not since:
        raise SessionError("until needs since: give the first day of the selection too")
    if since and until and since > until:
        raise SessionError(f"since {since} is after until {until}")


def validate_contractors(contractors):
    """Contractor ids are spliced into ARNs: refuse anything but the id format."""
    for c in contractors or ():
        if not isinstance(c, str) or not CONTRACTOR.match(c):
            raise SessionError(f"contractor {c!r}: 3-63 characters of a-z, 0-9 and -")


def date_patterns(since, until):
    """Key patterns covering the sealing dates [since, until] (inclusive; until defaults to
    today): whole years as `yyyy/*`, whole months as `yyyy/mm/*`, other days one by one;
    `["*"]` without bounds."""
    if since is None:
        return ["*"]
    until = until or _dt.datetime.now(_dt.timezone.utc).date()
    out, day = [], since
    while day <= until:
        month_end = (day.replace(day=28) + _dt.timedelta(days=4)).replace(day=1) - _dt.timedelta(days=1)
        year_end = day.replace(month=12, day=31)
        if day.month == 1 and day.day == 1 and year_end <= until:
            out.append(day.strftime("%Y/*"))
            day = year_end + _dt.timedelta(days=1)
        elif day.day == 1 and month_end <= until:
            out.append(day.strftime("%Y/%m/*"))
            day = month_end + _dt.timedelta(days=1)
        else:
            out.append(day.strftime("%Y/%m/%d/*"))
            day += _dt.timedelta(days=1)
    return out


def scopes(contractors, since, until):
    """`<contractor>/<date pattern>` patterns under a top-level prefix."""
    dates = date_patterns(since, until)
    who = sorted(set(contractors)) if contractors else ["*"]
    return [f"{c}/{d}" if d != "*" else f"{c}/*" for c in who for d in dates]


def session_policy(bucket, purpose, contractors=None, since=None, until=None, audit_bucket=None):
    """The session policy of a read session: GETs on the purpose's payload prefix and on
    `manifests/`, within the scopes; listing `manifests/` (keys name contractors and samples,
    nothing biometric); KMS Decrypt and the wrapped identity (the role's own policy narrows these
    to its keys and encryption context); appending read-audit records."""
    if not BUCKET.match(bucket):
        raise SessionError(f"bucket {bucket!r} is not an S3 bucket name")
    validate_contractors(contractors)
    sc = scopes(contractors, since, until)
    tops = ["manifests"] + ([PAYLOAD_PREFIX[purpose]] if PAYLOAD_PREFIX[purpose] else [])
    list_prefixes = [f"manifests/{c}/*" for c in sorted(set(contractors))] if contractors else ["manifests/*"]
    statements = [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"arn:aws:s3:::{bucket}/{t}/{s}" for t in tops for s in sc],
        },
        {
            "Sid": "List",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": list_prefixes}},
        },
        {"Sid": "Keys", "Effect": "Allow", "Action": ["kms:Decrypt", "secretsmanager:GetSecretValue"], "Resource": "*"},
    ]
    if audit_bucket:
        statements.append(
            {"Sid": "Audit", "Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{audit_bucket}/reads/*"}
        )
    policy = {"Version": "2012-10-17", "Statement": statements}
    text = json.dumps(policy, separators=(",", ":"))
    if len(text) > MAX_POLICY_CHARS:
        raise SessionError(
            f"this selection needs a {len(text)}-character session policy, over STS's {MAX_POLICY_CHARS}: "
            "name fewer contractors, or use dates that cover whole months"
        )
    return policy


class ReadSession:
    """Credentials of one assumed reader role, renewed before they expire, and the clients that
    use them. `base` is the caller's own boto3 session (their SSO or profile)."""

    def __init__(self, *, bucket, role_arn, requester, purpose, reason=None, contractors=None,
                 since=None, until=None, duration_s=MAX_DURATION_S, audit_bucket=None,
                 base=None, endpoint_url=None, region_name=None):
        validate(purpose, requester, reason, contractors, since, until)
        if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
            raise SessionError(f"duration_s: {MIN_DURATION_S}-{MAX_DURATION_S} seconds (read sessions last at most an hour)")
        self.bucket, self.role_arn, self.requester = bucket, role_arn, requester
        self.purpose, self.reason, self.audit_bucket = purpose, reason, audit_bucket
        self.contractors = sorted(set(contractors)) if contractors else None
        self.since, self.until, self.duration_s = since, until, duration_s
        self.policy = session_policy(bucket, purpose, contractors, since, until, audit_bucket)
        self._base = base or boto3.Session(region_name=region_name)
        self._endpoint_url, self._region = endpoint_url, region_name or self._base.region_name or "us-east-1"
        self._lock = threading.Lock()
        self._clients = {}
        self._expires = None
        self.name = None
        self._assume()

    def _assume(self):
        sts = self._base.client("sts", endpoint_url=self._endpoint_url, region_name=self._region)
        self.name = f"voxseal-{self.purpose}-{secrets.token_hex(8)}"
        tags = [{"Key": TAG_PURPOSE, "Value": self.purpose}, {"Key": TAG_REQUESTER, "Value": self.requester}]
        if self.reason:
            tags.append({"Key": TAG_REASON, "Value": self.reason})
        out = sts.assume_role(
            RoleArn=self.role_arn,
            RoleSessionName=self.name,
            DurationSeconds=self.duration_s,
            SourceIdentity=self.requester,
            Tags=tags,
            Policy=json.dumps(self.policy, separators=(",", ":")),
        )
        c = out["Credentials"]
        self._creds = boto3.Session(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
            region_name=self._region,
        )
        self._expires = c["Expiration"]
        self._clients = {}

    @property
    def expires(self):
        """When the current credentials expire (UTC)."""
        return self._expires

    def client(self, service):
        """A client for `service` with this session's credentials, renewed when they are within
        five minutes of expiring."""
        with self._lock:
            left = (self._expires - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
            if left < REFRESH_MARGIN_S:
                self._assume()
            if service not in self._clients:
                self._clients[service] = self._creds.client(service, endpoint_url=self._endpoint_url)
            return self._clients[service]

    def in_scope(self, contractor, day):
        """Whether a sample of `contractor` sealed on `day` is in this session's selection (the
        same test the session policy makes in S3, made first so no request is refused)."""
        if self.contractors and contractor not in self.contractors:
            return False
        if self.since and day < self.since:
            return False
        return not (self.until and day > self.until)
