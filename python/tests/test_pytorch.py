"""The PyTorch adapter: a DataLoader with two worker processes reads every sample once, verified,
decrypted in memory and audited, with each worker in its own read session.

PyTorch runs in its own venv (`.venv/torch`, Debian's CPU-only python3-torch: PyPI's Linux wheels
need CUDA libraries), so the DataLoader runs in a child process of that interpreter; this test
compares what it read with what the plain reader reads here."""

import hashlib
import json
import os
import subprocess

import voxseal

from conftest import AUDIT_BUCKET, BUCKET, PROJECT, REPO, need

LOADER = r"""
import hashlib, json, sys
import boto3, torch, voxseal, voxseal.pytorch
a = json.loads(sys.argv[1])
base = boto3.Session(aws_access_key_id=a["key"], aws_secret_access_key=a["secret"], region_name=a["region"])
ds = voxseal.pytorch.FeaturesDataset(
    a["url"], project=a["project"], requester="torch@example.com", role_arn=a["role"],
    identity_secret=a["secret_name"], audit_bucket=a["audit_bucket"], audit_dir=a["audit_dir"],
    base=base, endpoint_url=a["endpoint"], budget=voxseal.ReadBudget(max_samples=a["budget"]))
rows = []
for row in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
    assert isinstance(row["log_mel"], torch.Tensor) and row["log_mel"].dtype == torch.float32
    rows.append({"sample_id": row["sample_id"], "log_mel": list(row["log_mel"].shape), "mfcc": list(row["mfcc"].shape),
                 "sha256": hashlib.sha256(row["log_mel"].numpy().tobytes() + row["mfcc"].numpy().tobytes()).hexdigest()})
print(json.dumps(rows))
"""


def torch_python():
    return need(os.environ.get("VOXSEAL_TORCH_PYTHON") or REPO / ".venv/torch/bin/python",
                "the PyTorch venv (scripts/setup.sh --test makes .venv/torch)")


def load_in_torch(stack, tmp_path, budget):
    creds = stack.moto.admin.get_credentials()
    args = {"key": creds.access_key, "secret": creds.secret_key, "region": stack.moto.admin.region_name,
            "url": f"s3://{BUCKET}", "project": PROJECT, "role": stack.training_role,
            "secret_name": f"voxseal/{PROJECT}/training", "audit_bucket": AUDIT_BUCKET,
            "audit_dir": str(tmp_path / "reads"), "endpoint": stack.moto.endpoint, "budget": budget}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([torch_python(), "-c", LOADER, json.dumps(args)], capture_output=True, text=True,
                          env={**env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"},
                          timeout=300)


def audited_samples(stack, requester):
    s3, out = stack.moto.client("s3"), []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=AUDIT_BUCKET, Prefix=f"reads/{PROJECT}/"):
        for o in page.get("Contents", ()):
            body = s3.get_object(Bucket=AUDIT_BUCKET, Key=o["Key"])["Body"].read().decode()
            out += [json.loads(l) for l in body.splitlines()]
    return [(r["sample"], r["session"]) for r in out if r["requester"] == requester]


def test_a_dataloader_with_two_workers_reads_each_sample_once_verified_and_audited(stack, tmp_path):
    run = load_in_torch(stack, tmp_path, budget=100)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert sorted(r["sample_id"] for r in rows) == sorted(stack.manifests)

    with stack.open(budget=voxseal.ReadBudget(max_samples=100)) as ds:
        expected = {s.sample_id: hashlib.sha256(s.log_mel.tobytes() + s.mfcc.tobytes()).hexdigest() for s in ds}
    for r in rows:
        frames = stack.manifests[r["sample_id"]]["features"]["frames"]
        assert (r["log_mel"], r["mfcc"]) == ([frames, 80], [frames, 13])
        assert r["sha256"] == expected[r["sample_id"]]

    audited = audited_samples(stack, "torch@example.com")
    assert sorted(s for s, _ in audited) == sorted(stack.manifests)
    assert len({session for _, session in audited}) == 2, "one read session per DataLoader worker"


def test_the_budget_is_split_between_the_workers(stack, tmp_path):
    # 5 samples, 2 workers: shares of 3 and 2. A budget of 2 gives each worker 1: refused.
    run = load_in_torch(stack, tmp_path, budget=2)
    assert run.returncode != 0
    assert "ReadBudgetExceeded" in run.stderr and "read budget (1 samples" in run.stderr, run.stderr


SHARES = r"""
import json, voxseal, voxseal.pytorch
out = {}
for total, parts in [(7, 3), (5, 2), (100, 4)]:
    b = voxseal.ReadBudget(max_samples=total, max_bytes=total * 1000 + 1)
    shares = [voxseal.pytorch._share_of(b, i, parts) for i in range(parts)]
    out[f"{total}/{parts}"] = [[s.max_samples for s in shares], sum(s.max_bytes for s in shares)]
try:
    voxseal.pytorch._share_of(voxseal.ReadBudget(max_samples=1), 0, 2)
except ValueError as e:
    out["too_small"] = str(e)
print(json.dumps(out))
"""


def test_the_workers_budgets_add_up_to_exactly_the_budget_given():
    run = subprocess.run([str(torch_python()), "-c", SHARES], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO / "python")})
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["7/3"] == [[3, 2, 2], 7001]
    assert out["5/2"] == [[3, 2], 5001]
    assert out["100/4"] == [[25, 25, 25, 25], 100001]
    assert "cannot be split between 2 DataLoader workers" in out["too_small"]
