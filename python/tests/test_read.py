"""The data team's read path against moto: sessions, wrapped identities, verified and audited
fetch, budget, tampering, catalogue."""

import datetime as dt
import json
import os
import sys

import botocore.exceptions
import pyrage
import pyarrow.parquet as pq
import pytest

import voxseal
from voxseal import audit, keys
from voxseal.session import ReadSession, session_policy

from conftest import AUDIT_BUCKET, BUCKET, CONTRACTORS, PROJECT, REGION, allow, make_role, run

N = sum(len(p) for p in CONTRACTORS.values())


def audit_records(stack, session_name):
    s3 = stack.moto.client("s3")
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=AUDIT_BUCKET, Prefix=f"reads/{PROJECT}/"):
        for o in page.get("Contents", ()):
            if f"/{session_name}/" in o["Key"]:
                body = s3.get_object(Bucket=AUDIT_BUCKET, Key=o["Key"])["Body"].read().decode()
                out += [json.loads(l) for l in body.splitlines()]
    return sorted(out, key=lambda r: r["seq"])


def test_training_reads_every_sample_verified_decrypted_and_audited(stack):
    with stack.open(budget=voxseal.ReadBudget(max_samples=100)) as ds:
        samples = list(ds)
    assert sorted(s.sample_id for s in samples) == sorted(stack.manifests)
    for s in samples:
        m = stack.manifests[s.sample_id]
        assert s.manifest == m
        assert s.log_mel.shape == (m["features"]["frames"], 80) and s.log_mel.dtype == "float32"
        assert s.mfcc.shape == (m["features"]["frames"], 13)
        assert s.wav is None
    records = audit_records(stack, ds.session.name)
    assert [r["sample"] for r in records] == [s.sample_id for s in samples]
    for r in records:
        assert (r["requester"], r["purpose"], r["event"], r["session"]) == ("ana@example.com", "training", "sample.read", ds.session.name)
        assert r["client_address"] == "127.0.0.1" and r["key"].startswith(f"features/{r['contractor']}/")
    with open(ds.audit_log.path) as f:
        assert audit.verify(f) == N


def test_archive_needs_a_reason_and_reads_raw_audio(stack):
    with pytest.raises(voxseal.SessionError, match="reason"):
        stack.open("archive")
    with stack.open("archive", reason="relabel batch 7", contractors=["bob-02"]) as ds:
        samples = list(ds)
    assert len(samples) == len(CONTRACTORS["bob-02"])
    for s in samples:
        assert s.wav[:4] == b"RIFF" and s.sample_rate == s.manifest["audio"]["sample_rate"]
        assert len(s.audio) == s.manifest["audio"]["samples"]
    assert {r["reason"] for r in audit_records(stack, ds.session.name)} == {"relabel batch 7"}


def test_the_training_role_cannot_read_raw_audio(stack):
    ds = stack.open()
    m = next(iter(stack.manifests.values()))
    from voxseal.manifest import object_key

    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        ds.session.client("s3").get_object(Bucket=BUCKET, Key=object_key(m, "raw"))
    ds.close()


def test_the_session_policy_means_what_it_says_in_moto_iam(stack):
    # moto ignores session policies: give a role exactly the policy a narrowed training session
    # gets, and let moto's IAM engine judge requests against it.
    pol = session_policy(BUCKET, "training", contractors=["alice-01"], audit_bucket=AUDIT_BUCKET)
    arn = make_role(stack.moto, "as-session-policy", pol["Statement"])
    s = ReadSession(bucket=BUCKET, role_arn=arn, requester="ana@example.com", purpose="training",
                    base=stack.moto.admin, endpoint_url=stack.moto.endpoint)
    s3 = s.client("s3")
    from voxseal.manifest import object_key

    for m in stack.manifests.values():
        for kind, allowed in (("features", m["contractor"] == "alice-01"), ("raw", False)):
            if allowed:
                s3.get_object(Bucket=BUCKET, Key=object_key(m, kind))
            else:
                with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
                    s3.get_object(Bucket=BUCKET, Key=object_key(m, kind))


def test_the_budget_refuses_reads_past_it_before_they_are_made(stack):
    ds = stack.open(budget=voxseal.ReadBudget(max_samples=2))
    it = iter(ds)
    next(it), next(it)
    with pytest.raises(voxseal.ReadBudgetExceeded, match="read budget \\(2 samples"):
        next(it)
    ds.close()
    assert len(audit_records(stack, ds.session.name)) == 2


def copy_bucket(stack, name):
    s3 = stack.moto.client("s3")
    s3.create_bucket(Bucket=name)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", ()):
            s3.copy_object(Bucket=name, Key=o["Key"], CopySource={"Bucket": BUCKET, "Key": o["Key"]})
    return s3


def tamper_role(stack, bucket):
    top = [f"arn:aws:s3:::{bucket}/{p}/*" for p in ("features", "manifests")]
    return make_role(stack.moto, f"reader-{bucket}", [
        allow("s3:GetObject", top), allow("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
        allow("s3:PutObject", f"arn:aws:s3:::{AUDIT_BUCKET}/reads/*"), allow("kms:Decrypt", "*"),
        allow("secretsmanager:GetSecretValue", "*")])


def test_an_edited_manifest_is_refused_naming_the_field(stack):
    bucket = "acme-tampered"
    s3 = copy_bucket(stack, bucket)
    m = next(m for m in stack.manifests.values() if m["contractor"] == "alice-01")
    from voxseal.manifest import manifest_key

    key = manifest_key(m)
    edited = dict(m, prompt_id="p3" if m["prompt_id"] != "p3" else "p1")
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(edited).encode())
    role = tamper_role(stack, bucket)
    with pytest.raises(voxseal.BindingMismatch, match="`prompt_id` does not match"):
        list(stack.open(bucket=bucket, role_arn=role))
    ds = stack.open(bucket=bucket, role_arn=role, strict=False)
    assert len(list(ds)) == N - 1 and [k for k, _ in ds.skipped] == [m["sample_id"]]
    # A manifest moved under another contractor's prefix is refused before any payload is read.
    s3.put_object(Bucket=bucket, Key=key.replace("alice-01", "bob-02"), Body=json.dumps(m).encode())
    ds = stack.open(bucket=bucket, role_arn=role, strict=False)
    list(ds)
    assert any("found under 'bob-02'" in why for _, why in ds.skipped)


def test_a_wrapped_identity_opens_only_for_its_project_and_purpose(stack):
    sm, kms = stack.moto.client("secretsmanager"), stack.moto.client("kms")
    doc = keys.load(sm, f"voxseal/{PROJECT}/training")
    assert b"AGE-SECRET-KEY" not in doc
    keys.unwrap(kms, doc, PROJECT, "training")
    with pytest.raises(keys.WrappedKeyError, match="purpose 'training'"):
        keys.unwrap(kms, doc, PROJECT, "archive")
    # A document relabelled for another purpose fails in KMS (the context is bound to the data key).
    d = json.loads(doc)
    d["purpose"] = "archive"
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidCiphertext"):
        keys.unwrap(kms, json.dumps(d), PROJECT, "archive")
    d = json.loads(doc)
    d["ciphertext"] = d["ciphertext"][:-4] + ("AAAA" if d["ciphertext"][-4:] != "AAAA" else "BBBB")
    with pytest.raises(keys.WrappedKeyError, match="does not decrypt"):
        keys.unwrap(kms, json.dumps(d), PROJECT, "training")


def test_the_data_cli_wraps_an_existing_plaintext_identity_file(stack, tmp_path):
    # `project init --wrap-identities` (the stack fixture) makes new identities; this is the
    # path for a project whose identities are already files.
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "training.key"
    key_file.write_text(f"# an older project\n{identity}\n")
    run([sys.executable, "-m", "voxseal", "--endpoint-url", stack.moto.endpoint, "--region", REGION,
         "wrap-identity", "--key-file", key_file, "--kms-key", stack.identity_key,
         "--secret", "voxseal/older-project/training", "--project", "older-project", "--purpose", "training"],
        env=stack.moto.env())
    doc = keys.load(stack.moto.client("secretsmanager"), "voxseal/older-project/training")
    unwrapped = keys.unwrap(stack.moto.client("kms"), doc, "older-project", "training")
    assert str(unwrapped.to_public()) == str(identity.to_public())


def test_the_catalogue_is_built_from_manifests_without_a_key(stack, tmp_path):
    out = tmp_path / "catalog.parquet"
    session = voxseal.open_session(f"s3://{BUCKET}", purpose="catalog", requester="ana@example.com",
                                   role_arn=stack.training_role, base=stack.moto.admin, endpoint_url=stack.moto.endpoint)
    assert "features/" not in json.dumps(session.policy)
    from voxseal import catalog

    n, skipped = catalog.build(session, PROJECT, out)
    assert (n, skipped) == (N, [])
    t = pq.read_table(out).to_pylist()
    assert sorted(r["sample"] for r in t) == sorted(stack.manifests)
    for r in t:
        m = stack.manifests[r["sample"]]
        assert (r["contractor"], r["prompt"], r["quality"]) == (m["contractor"], m["prompt_id"], m["quality"]["overall"])
        assert r["consent_sha256"] == m["consent"]["text_sha256"] and r["config_sha256"] == m["config_sha256"]
        assert r["features_size"] == next(p["size"] for p in m["payloads"] if p["kind"] == "features")
        assert r["features_key"].startswith(f"features/{m['contractor']}/")
    assert sorted({r["contractor"] for r in t}) == sorted(CONTRACTORS)


def test_session_requests_are_checked_before_sts_is_asked():
    with pytest.raises(voxseal.SessionError, match="requester"):
        ReadSession(bucket=BUCKET, role_arn="arn:aws:iam::1:role/x", requester="a b", purpose="training")
    with pytest.raises(voxseal.SessionError, match="purpose"):
        ReadSession(bucket=BUCKET, role_arn="arn:aws:iam::1:role/x", requester="ana", purpose="everything")
    with pytest.raises(voxseal.SessionError, match="at most an hour"):
        ReadSession(bucket=BUCKET, role_arn="arn:aws:iam::1:role/x", requester="ana", purpose="training", duration_s=7200)
    with pytest.raises(voxseal.SessionError, match="contractor"):
        session_policy(BUCKET, "training", contractors=["../x"])
    many = [f"contractor-{i:03d}" for i in range(60)]
    with pytest.raises(voxseal.SessionError, match="2048"):
        session_policy(BUCKET, "training", contractors=many)
    with pytest.raises(voxseal.SessionError, match="s3://BUCKET"):
        voxseal.bucket_of("s3://b/features/")


def test_date_ranges_become_whole_years_months_and_days():
    from voxseal.session import date_patterns

    assert date_patterns(dt.date(2025, 12, 30), dt.date(2027, 2, 2)) == [
        "2025/12/30/*", "2025/12/31/*", "2026/*", "2027/01/*", "2027/02/01/*", "2027/02/02/*"]
    assert date_patterns(None, None) == ["*"]


def test_manifest_keys_outside_the_layout_are_not_samples():
    from voxseal.manifest import parse_manifest_key

    assert parse_manifest_key("manifests/alice-01/2026/12/06/sample-" + "a" * 32 + ".json")
    for bad in ("manifests/alice-01/audit/000000000001-abcd.checkpoint",
                "manifests/alice-01/2026/13/06/sample-" + "a" * 32 + ".json",
                "manifests/../2026/12/06/sample-" + "a" * 32 + ".json",
                "manifests/alice-01/2026/12/06/sample-x.json"):
        assert parse_manifest_key(bad) is None, bad


def test_the_hugging_face_adapter_streams_verified_samples(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import voxseal.hf

    ds = voxseal.hf.features_dataset(
        f"s3://{BUCKET}", project=PROJECT, requester="hf@example.com", role_arn=stack.training_role,
        identity_secret=f"voxseal/{PROJECT}/training", audit_bucket=AUDIT_BUCKET,
        audit_dir=str(tmp_path / "reads"), base=stack.moto.admin, endpoint_url=stack.moto.endpoint)
    rows = list(ds)
    assert sorted(r["sample_id"] for r in rows) == sorted(stack.manifests)
    for r in rows:
        frames = stack.manifests[r["sample_id"]]["features"]["frames"]
        assert len(r["log_mel"]) == frames and len(r["log_mel"][0]) == 80 and len(r["mfcc"][0]) == 13
    # datasets leaves an empty lock file for the builder; nothing else may reach its cache.
    cache = tmp_path / "hf-cache"
    cached = [p for p in cache.rglob("*") if p.is_file() and (p.suffix != ".lock" or p.stat().st_size)]
    assert cached == [], "nothing decrypted may be cached to disk"


def test_the_command_line_builds_the_catalogue_and_checks_a_read_log(stack, tmp_path):
    import subprocess
    import sys

    from conftest import REGION

    env = {**os.environ, **stack.moto.env()}
    out = tmp_path / "catalog.parquet"
    run = subprocess.run(
        [sys.executable, "-m", "voxseal", "--endpoint-url", stack.moto.endpoint, "--region", REGION, "catalog",
         f"s3://{BUCKET}", "--project", PROJECT, "--requester", "cli@example.com", "--role-arn", stack.training_role,
         "--contractor", "bob-02", "--out", str(out)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"{len(CONTRACTORS['bob-02'])} samples" in run.stdout
    assert {r["contractor"] for r in pq.read_table(out).to_pylist()} == {"bob-02"}
    with stack.open(budget=voxseal.ReadBudget(max_samples=2)) as ds:
        next(iter(ds))
    log = ds.audit_log.path
    check = [sys.executable, "-m", "voxseal", "verify-audit", str(log)]
    run = subprocess.run(check, capture_output=True, text=True)
    assert run.returncode == 0 and "1 records, hash chain intact" in run.stdout, run.stderr
    lines = open(log).read().splitlines()
    record = json.loads(lines[0])
    record["sample"] = "sample-" + "0" * 32
    open(log, "w").write(json.dumps(record, sort_keys=True) + "\n")
    run = subprocess.run(check, capture_output=True, text=True)
    assert run.returncode == 2 and "hash chain breaks" in run.stderr
