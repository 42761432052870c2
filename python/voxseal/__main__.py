"""`voxseal-data` (or `python -m voxseal`): the data team's commands.

    voxseal-data catalog s3://BUCKET --project P --requester ME --role-arn ARN --out catalog.parquet
    voxseal-data wrap-identity --key-file training.key --kms-key KEY --secret NAME --project P --purpose training
    voxseal-data verify-audit reads.jsonl
"""

import argparse
import datetime as _dt
import sys

import boto3

from . import audit, catalog, keys, open_session
from .session import SessionError


def _date(text):
    return _dt.date.fromisoformat(text)


def _parser():
    p = argparse.ArgumentParser(prog="voxseal-data", description="Voxseal for the data team")
    p.add_argument("--endpoint-url", help="S3/STS/KMS endpoint (S3-compatible stores, tests)")
    p.add_argument("--region", help="AWS region")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("catalog", help="build the Parquet catalogue from manifests (no key needed)")
    c.add_argument("bucket", help="s3://BUCKET")
    c.add_argument("--project", required=True)
    c.add_argument("--requester", required=True, help="who reads (your e-mail address): the session's source identity")
    c.add_argument("--role-arn", help="a reader role (default: $VOXSEAL_CATALOG_ROLE_ARN)")
    c.add_argument("--contractor", action="append", help="only these contractors (repeat)")
    c.add_argument("--since", type=_date, help="first sealing date (YYYY-MM-DD)")
    c.add_argument("--until", type=_date, help="last sealing date (YYYY-MM-DD)")
    c.add_argument("--out", required=True, help="the Parquet file to write (replaced atomically)")
    w = sub.add_parser("wrap-identity", help="(project leads) wrap an age identity under KMS into Secrets Manager")
    w.add_argument("--key-file", required=True, help="the plaintext identity file (wipe it afterwards)")
    w.add_argument("--kms-key", required=True, help="the identity-wrapping KMS key (id, ARN or alias)")
    w.add_argument("--secret", required=True, help="the Secrets Manager secret name")
    w.add_argument("--project", required=True)
    w.add_argument("--purpose", required=True, choices=keys.PURPOSES)
    v = sub.add_parser("verify-audit", help="check a read audit log's hash chain")
    v.add_argument("file")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command == "catalog":
            session = open_session(args.bucket, purpose="catalog", requester=args.requester, role_arn=args.role_arn,
                                   contractors=args.contractor, since=args.since, until=args.until,
                                   endpoint_url=args.endpoint_url, region_name=args.region)
            n, skipped = catalog.build(session, args.project, args.out)
            for key, reason in skipped:
                print(f"left out {key}: {reason}", file=sys.stderr)
            print(f"{args.out}: {n} samples")
        elif args.command == "wrap-identity":
            aws = boto3.Session(region_name=args.region)
            document = keys.wrap(aws.client("kms", endpoint_url=args.endpoint_url), args.kms_key,
                                 keys.identity_text_from_file(args.key_file), args.project, args.purpose)
            keys.store(aws.client("secretsmanager", endpoint_url=args.endpoint_url), args.secret, document)
            print(f"wrapped {args.purpose} identity stored as secret {args.secret}; now wipe {args.key_file} (voxseal wipe)")
        else:
            with open(args.file) as f:
                print(f"{args.file}: {audit.verify(f)} records, hash chain intact")
    except (SessionError, keys.WrappedKeyError, audit.AuditError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
