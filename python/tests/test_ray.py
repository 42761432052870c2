"""Ray Data at scale: 10,000 samples read by Ray workers on a local Ray instance, each worker with
its own read session, every sample verified and audited. The same data also serves the read
benchmark (bench/read.sh: the naive loop against 1 and 2 workers)."""

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pyrage
import pytest

from voxseal import keys

from conftest import AUDIT_BUCKET, BUCKET, PROJECT, REGION, allow, make_role
from reseal import reseal, upload

SCALE = int(os.environ.get("VOXSEAL_RAY_SAMPLES", "10000"))
SCALE_BUCKET = "acme-scale"
RAY_TEMP = "/dev/shm/voxseal-ray"
CONTRACTORS = [f"load-{i:03d}" for i in range(20)]


@pytest.fixture(scope="module")
def scale(stack):
    """SCALE resealed samples in their own bucket, and a training reader role for it."""
    s3 = stack.moto.client("s3")
    s3.create_bucket(Bucket=SCALE_BUCKET)
    ident = keys.unwrap(stack.moto.client("kms"), keys.load(stack.moto.client("secretsmanager"), f"voxseal/{PROJECT}/training"),
                        PROJECT, "training")
    from voxseal.manifest import object_key

    original = next(iter(stack.manifests.values()))
    plain = pyrage.decrypt(s3.get_object(Bucket=BUCKET, Key=object_key(original, "features"))["Body"].read(), [ident])
    copies = [reseal(original, plain, ident.to_public(), CONTRACTORS[i % len(CONTRACTORS)]) for i in range(SCALE)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: upload(s3, SCALE_BUCKET, *c), copies))
    print(f"\nRAY setup: {SCALE} resealed samples uploaded in {time.monotonic() - t0:.1f} s")
    role = make_role(stack.moto, "scale-training-reader", [
        allow("s3:GetObject", [f"arn:aws:s3:::{SCALE_BUCKET}/features/*", f"arn:aws:s3:::{SCALE_BUCKET}/manifests/*"]),
        allow("s3:ListBucket", f"arn:aws:s3:::{SCALE_BUCKET}"),
        allow("s3:PutObject", f"arn:aws:s3:::{AUDIT_BUCKET}/reads/*"),
        allow("kms:Decrypt", "*"),
        allow("secretsmanager:GetSecretValue", "*"),
    ])
    return {c[0]["sample_id"]: c[0] for c in copies}, role, ident


@pytest.fixture(scope="module")
def local_ray(stack):
    """A local Ray instance (2 CPUs) whose workers hold the test's AWS credentials, as workers on
    a cluster hold their instance role's."""
    import ray

    os.environ.update({k: v for k, v in stack.moto.env().items() if k != "AWS_ENDPOINT_URL"})
    start_ray(ray)
    yield ray
    ray.shutdown()
    shutil.rmtree(RAY_TEMP, ignore_errors=True)  # its logs would hold memory in /dev/shm


def start_ray(ray):
    # No spilling, and the temp directory (where a full object store falls back to files) in
    # memory: otherwise decrypted blocks could reach the disk (python/README.md); the reader
    # refuses a temp directory on disk.
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 << 20, log_to_driver=False,
             configure_logging=False, _temp_dir=RAY_TEMP,
             _system_config={"automatic_object_spilling_enabled": False})


def read(stack, role, workers, requester):
    import voxseal.ray

    ds = voxseal.ray.read_features(f"s3://{SCALE_BUCKET}", project=PROJECT, requester=requester, role_arn=role,
                                   identity_secret=f"voxseal/{PROJECT}/training", audit_bucket=AUDIT_BUCKET,
                                   budget=SCALE, endpoint_url=stack.moto.endpoint, region_name=REGION,
                                   parallelism=workers,
                                   # not ds.select_columns: Ray Data fuses it into the read task with
                                   # no block size, so each task's share would come out as one block
                                   columns=["sample_id", "contractor", "log_mel", "mfcc", "worker_peak_rss_kib"])
    return ds


def audited(stack, requester):
    s3, n = stack.moto.client("s3"), 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=AUDIT_BUCKET, Prefix=f"reads/{PROJECT}/"):
        for o in page.get("Contents", ()):
            body = s3.get_object(Bucket=AUDIT_BUCKET, Key=o["Key"])["Body"].read().decode()
            n += sum(1 for l in body.splitlines() if json.loads(l)["requester"] == requester)
    return n


def test_ray_reads_every_sample_verified_and_audited(stack, scale, local_ray):
    manifests, role, _ = scale
    seen = {}
    for batch in read(stack, role, 2, "ray@example.com").iter_batches(batch_size=512, batch_format="numpy"):
        for sid, contractor, log_mel, mfcc in zip(batch["sample_id"], batch["contractor"], batch["log_mel"], batch["mfcc"]):
            m = manifests[sid]
            assert contractor == m["contractor"]
            assert log_mel.shape == (m["features"]["frames"], 80) and mfcc.shape == (m["features"]["frames"], 13)
            seen[sid] = True
    assert len(seen) == SCALE == len(manifests)
    assert audited(stack, "ray@example.com") == SCALE


def test_ray_refuses_a_read_over_its_budget(stack, scale, local_ray):
    import voxseal
    import voxseal.ray

    _, role, _ = scale
    with pytest.raises(voxseal.ReadBudgetExceeded, match=f"holds {SCALE} samples, over the budget of 10"):
        voxseal.ray.read_features(f"s3://{SCALE_BUCKET}", project=PROJECT, requester="ray@example.com",
                                  role_arn=role, identity_secret=f"voxseal/{PROJECT}/training", budget=10,
                                  endpoint_url=stack.moto.endpoint, region_name=REGION)


def test_a_read_task_hands_on_blocks_of_a_few_mib_not_its_whole_share(stack, scale, local_ray):
    # Ray Data merged a read task's blocks up to 128 MiB (and, with select_columns, into one block
    # per task), so a worker's memory grew with the samples it read (docs/performance.md).
    import voxseal.ray

    _, role, _ = scale
    one = CONTRACTORS[0]
    def read_one(**kw):
        return voxseal.ray.read_features(f"s3://{SCALE_BUCKET}", project=PROJECT, requester="blocks@example.com",
                                         role_arn=role, identity_secret=f"voxseal/{PROJECT}/training",
                                         audit_bucket=AUDIT_BUCKET, budget=SCALE, contractors=[one], parallelism=1,
                                         endpoint_url=stack.moto.endpoint, region_name=REGION, **kw)

    sizes = [len(b["sample_id"]) for b in read_one().iter_batches(batch_size=None, batch_format="numpy")]
    share = SCALE // len(CONTRACTORS)
    assert sum(sizes) == share
    per_block = (8 << 20) // (110 << 10) + 1
    assert max(sizes) <= 2 * per_block, f"blocks of {sizes} samples for a share of {share}"
    picked = read_one(columns=["sample_id", "log_mel"])
    assert set(picked.schema().names) == {"sample_id", "log_mel"}
    assert max(len(b["sample_id"]) for b in picked.iter_batches(batch_size=None, batch_format="numpy")) <= 2 * per_block
    with pytest.raises(ValueError, match="choose among"):
        voxseal.ray.read_features(f"s3://{SCALE_BUCKET}", project=PROJECT, requester="blocks@example.com",
                                  role_arn=role, identity_secret=f"voxseal/{PROJECT}/training", budget=SCALE,
                                  endpoint_url=stack.moto.endpoint, region_name=REGION, columns=["audio"])


@pytest.mark.skipif(os.environ.get("VOXSEAL_BENCH_READ") != "1", reason="the read benchmark: bench/read.sh")
def test_read_throughput_naive_loop_against_ray(stack, scale, local_ray):
    """Prints READ lines: samples/s of the naive loop (boto3 get + pyrage + safetensors, one
    process, no checks) and of voxseal.ray with 1 and 2 workers, on the same data in one run."""
    from safetensors.numpy import load

    manifests, role, ident = scale
    s3 = boto3.client("s3", endpoint_url=stack.moto.endpoint, region_name=REGION)
    from voxseal.manifest import object_key

    t0 = time.monotonic()
    for m in manifests.values():
        t = load(pyrage.decrypt(s3.get_object(Bucket=SCALE_BUCKET, Key=object_key(m, "features"))["Body"].read(), [ident]))
        assert t["log_mel"].shape[1] == 80
    naive = SCALE / (time.monotonic() - t0)
    print(f"\nREAD naive loop: {naive:.0f} samples/s")
    # Where a sample's time goes in our reader, in this process: what a Rust extension could speed
    # up (decrypt, parse, checks) against what it could not (the requests).
    from voxseal.binding import check
    from voxseal.manifest import check_ciphertext

    m = next(iter(manifests.values()))
    sealed = s3.get_object(Bucket=SCALE_BUCKET, Key=object_key(m, "features"))["Body"].read()
    reps = 500
    t0 = time.perf_counter()
    for _ in range(reps):
        check_ciphertext(m, "features", sealed)
        plain = pyrage.decrypt(sealed, [ident])
        check(m, plain)
        load(plain)
    local = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        s3.get_object(Bucket=SCALE_BUCKET, Key=object_key(m, "features"))["Body"].read()
    get = (time.perf_counter() - t0) / reps
    print(f"READ per sample ({len(sealed)} bytes sealed): hash + decrypt + binding + parse {local * 1e6:.0f} us, "
          f"one GET {get * 1e6:.0f} us (a sample takes two GETs)")
    for workers in (1, 2):
        # Fresh worker processes for each run: a worker's peak RSS covers its whole life.
        local_ray.shutdown()
        start_ray(local_ray)
        from test_ray_memory import Poller

        poller = Poller()
        poller.start()
        t0 = time.monotonic()
        peak = 0
        for batch in read(stack, role, workers, f"bench-{workers}@example.com").iter_batches(batch_size=1024, batch_format="numpy"):
            peak = max(peak, int(batch["worker_peak_rss_kib"].max()))
        rate = SCALE / (time.monotonic() - t0)
        # RSS (ru_maxrss, VmHWM) also counts the object store's shared pages the worker has touched
        # (bounded by the store's size, shared by all workers): RssAnon is the worker's own memory.
        readers = [p for pid, p in poller.stop() if "ReadFeatures" in poller.names.get(pid, "")]
        anon = max((p["RssAnon"] for p in readers), default=0)
        shmem = max((p["RssShmem"] for p in readers), default=0)
        print(f"READ voxseal.ray {workers} worker(s): {rate:.0f} samples/s ({rate / naive:.2f}x the naive loop), "
              f"peak worker RSS {peak / 1024:.0f} MiB, peak RssAnon {anon / 1024:.0f} MiB, "
              f"peak RssShmem {shmem / 1024:.0f} MiB")
