"""Fixtures: moto's server on 127.0.0.1 (IAM enforced), the AWS side of a project as
deploy/aws sets it up (bucket with versions, keys, upload and reader roles, wrapped identities),
and real samples: spoken by espeak-ng, sealed by the `voxseal` CLI and uploaded by it through
STS, as a contractor's machine does."""

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import boto3
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "acme-samples"
AUDIT_BUCKET = "acme-audit"
PROJECT = "acme-voice"
CONTRACTORS = {"alice-01": ["p1", "p2", "p3"], "bob-02": ["p1", "p2"]}
CONSENT = "I agree that my recordings are used to train speech models."


def required():
    return os.environ.get("VOXSEAL_REQUIRE_TOOLS") == "1"


def need(path, what):
    if path and pathlib.Path(path).exists():
        return pathlib.Path(path)
    if required():
        pytest.fail(f"{what} is required and missing ({path}): run scripts/test.sh")
    pytest.skip(f"{what} not found ({path})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Moto:
    endpoint: str
    admin: boto3.Session

    def client(self, service):
        return self.admin.client(service, endpoint_url=self.endpoint)

    def env(self):
        c = self.admin.get_credentials()
        return {"AWS_ACCESS_KEY_ID": c.access_key, "AWS_SECRET_ACCESS_KEY": c.secret_key,
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    server = need(pathlib.Path(sys.executable).parent / "moto_server", "moto's server")
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        if proc.poll() is None:
            break
    else:
        pytest.fail(f"moto did not start:\n{log.read_text()}")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="allow-all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        admin = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                              region_name=REGION)
        yield Moto(endpoint, admin)
    finally:
        proc.kill()
        proc.wait()


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resources):
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def make_role(moto, name, statements):
    """A role the admin may assume (with session tags and source identity), with `statements`
    as its identity policy."""
    iam = moto.client("iam")
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/admin"},
             "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy(trust), MaxSessionDuration=3600)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=policy(*statements))
    return arn


def voxseal_bin():
    exe = os.environ.get("VOXSEAL_BIN")
    if not exe:
        target = os.environ.get("CARGO_TARGET_DIR") or str(pathlib.Path.home() / ".cache/voxseal/target")
        exe = os.path.join(target, "debug", "voxseal")
    return need(exe, "the voxseal CLI (cargo build -p voxseal-cli)")


def run(cmd, env=None, **kw):
    out = subprocess.run([str(c) for c in cmd], env={**os.environ, **(env or {})}, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


@dataclasses.dataclass
class Stack:
    moto: Moto
    dir: pathlib.Path
    training_role: str
    archive_role: str
    upload_role: str
    identity_key: str
    manifests: dict  # sample id -> manifest (as sealed)

    def open(self, purpose="training", **kw):
        import voxseal

        args = dict(project=PROJECT, purpose=purpose, requester="ana@example.com",
                    role_arn=self.training_role if purpose != "archive" else self.archive_role,
                    identity_secret=f"voxseal/{PROJECT}/{purpose}", audit_bucket=AUDIT_BUCKET,
                    audit_dir=tempfile.mkdtemp(dir=self.dir), base=self.moto.admin, endpoint_url=self.moto.endpoint)
        args.update(kw)
        return voxseal.open_dataset(f"s3://{args.pop('bucket', BUCKET)}", **args)


@pytest.fixture(scope="session")
def stack(moto, tmp_path_factory):
    exe = voxseal_bin()
    espeak = need(shutil.which("espeak-ng"), "espeak-ng")
    d = tmp_path_factory.mktemp("stack")
    s3, kms = moto.client("s3"), moto.client("kms")
    for b in (BUCKET, AUDIT_BUCKET):
        s3.create_bucket(Bucket=b)
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    data_key = kms.create_key(Description="voxseal project key")["KeyMetadata"]["Arn"]
    identity_key = kms.create_key(Description="voxseal identity key")["KeyMetadata"]["Arn"]
    upload = make_role(moto, "voxseal-upload", [allow(
        ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        [f"arn:aws:s3:::{BUCKET}/{p}/*" for p in ("raw", "features", "manifests")])])

    def reader(top):
        return [
            allow("s3:GetObject", [f"arn:aws:s3:::{BUCKET}/{top}/*", f"arn:aws:s3:::{BUCKET}/manifests/*"]),
            allow("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"),
            allow("s3:PutObject", f"arn:aws:s3:::{AUDIT_BUCKET}/reads/*"),
            # moto matches resources only for S3 (other services' requests are checked against
            # "*"): the per-key and per-secret scoping of deploy/aws cannot be enforced here.
            allow("kms:Decrypt", "*"),
            allow("secretsmanager:GetSecretValue", "*"),
        ]

    training = make_role(moto, "voxseal-training-reader", reader("features"))
    archive = make_role(moto, "voxseal-archive-reader", reader("raw"))

    proj = d / "proj"
    (d / "prompts.csv").write_text("id,text,note\np1,The quick brown fox.,\np2,Seven silver spoons.,\np3,A bright morning.,\n")
    (d / "consent.txt").write_text(CONSENT)
    run([exe, "project", "init", proj, "--name", PROJECT, "--no-password", "--prompts", d / "prompts.csv",
         "--consent", d / "consent.txt", "--bucket", BUCKET, "--region", REGION, "--kms-key-arn", data_key,
         "--broker-url", "https://broker.invalid", "--endpoint", moto.endpoint,
         # the production path: identities wrapped under KMS into Secrets Manager, no key files
         "--wrap-identities", identity_key], env=moto.env())
    consent = hashlib.sha256(CONSENT.encode()).hexdigest()[:16]
    manifests = {}
    for contractor, prompts in CONTRACTORS.items():
        env = {"VOXSEAL_DATA_DIR": str(d / contractor), "VOXSEAL_TRUST_LEAD_KEY": str(proj / "lead.pub"),
               "NO_COLOR": "1", **moto.env()}
        run([exe, "init", "--contractor", contractor, "--project", proj / "project.toml",
             "--accept-consent", consent], env=env)
        for i, prompt in enumerate(prompts):
            wav = d / f"{contractor}-{prompt}.wav"
            run([espeak, "-s", str(150 + 10 * i), "-w", wav, "Please record this sentence for the project."])
            run([exe, "seal", wav, "--prompt", prompt, "--accept-failed"], env=env)
        for item in (d / contractor / "outbox").iterdir():
            if (item / "manifest.json").exists():
                m = json.loads((item / "manifest.json").read_text())
                manifests[m["sample_id"]] = m
        run([exe, "upload", "--role-arn", upload], env=env)
    return Stack(moto, d, training, archive, upload, identity_key, manifests)
