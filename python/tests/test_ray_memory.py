"""Memory of a Ray read worker against the number of samples it reads (VOXSEAL_BENCH_READ_MEMORY=1).

The resealed samples of test_ray.py (VOXSEAL_RAY_SAMPLES, round-robin over 20 contractors) are
read with one worker, first a subset of contractors and then all of them, and a thread of the
driver polls /proc/<pid>/status of every Ray worker process: peak VmRSS (what ru_maxrss reports),
and its parts RssAnon (the worker's private memory), RssShmem (shared memory mapped into it: the
object store's pages and Ray's fallback files on tmpfs) and RssFile (mapped files, libraries).
Prints MEM lines."""

import os
import threading
import time

import pytest

from conftest import AUDIT_BUCKET, PROJECT, REGION
from test_ray import CONTRACTORS, SCALE, SCALE_BUCKET, local_ray, scale, start_ray  # noqa: F401 (fixtures)

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def _status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in FIELDS:
                out[k] = int(v.split()[0])
    return out


def _ray_workers():
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd.startswith(b"ray::"):
            yield int(pid), cmd.split(b"\0")[0].decode(errors="replace")


class Poller(threading.Thread):
    """Peak of each field per Ray worker process, every `every` seconds."""

    def __init__(self, every=0.05):
        super().__init__(daemon=True)
        self.every, self.peaks, self.names, self._halt = every, {}, {}, threading.Event()

    def run(self):
        while not self._halt.is_set():
            for pid, name in list(_ray_workers()):
                try:
                    s = _status(pid)
                except OSError:
                    continue
                p = self.peaks.setdefault(pid, dict.fromkeys(FIELDS, 0))
                for k, v in s.items():
                    p[k] = max(p[k], v)
                if "IDLE" not in name:
                    self.names[pid] = name
            time.sleep(self.every)

    def stop(self):
        self._halt.set()
        self.join()
        # the worker(s) that ran read tasks (the busiest ones)
        return sorted(self.peaks.items(), key=lambda kv: -kv[1]["VmHWM"])


@pytest.mark.skipif(os.environ.get("VOXSEAL_BENCH_READ_MEMORY") != "1", reason="memory against samples read: VOXSEAL_BENCH_READ_MEMORY=1 (docs/performance.md)")
def test_read_worker_memory_against_samples_read(stack, scale, local_ray):
    import voxseal.ray

    _, role, _ = scale
    select = os.environ.get("VOXSEAL_MEMORY_SELECT") == "1"
    subsets = [int(n) for n in os.environ.get("VOXSEAL_MEMORY_CONTRACTORS", "2,5,10,20").split(",")]
    for n in subsets:
        local_ray.shutdown()
        start_ray(local_ray)
        poller = Poller()
        poller.start()
        t0 = time.monotonic()
        ds = voxseal.ray.read_features(f"s3://{SCALE_BUCKET}", project=PROJECT, requester="mem@example.com",
                                       role_arn=role, identity_secret=f"voxseal/{PROJECT}/training",
                                       audit_bucket=AUDIT_BUCKET, budget=SCALE, endpoint_url=stack.moto.endpoint,
                                       region_name=REGION, parallelism=1, contractors=CONTRACTORS[:n] if n < len(CONTRACTORS) else None,
                                       columns=None if select else ["sample_id", "log_mel", "worker_peak_rss_kib"])
        if select:  # as bench/read.sh did: Ray fuses the projection into the read, one block per task
            ds = ds.select_columns(["sample_id", "log_mel", "worker_peak_rss_kib"])
        rows, peak_col, blocks = 0, 0, []
        for batch in ds.iter_batches(
                batch_size=None if os.environ.get("VOXSEAL_MEMORY_BLOCKS") else 1024, batch_format="numpy"):
            rows += len(batch["sample_id"])
            blocks.append(len(batch["sample_id"]))
            peak_col = max(peak_col, int(batch["worker_peak_rss_kib"].max()))
            if os.environ.get("VOXSEAL_MEMORY_BLOCKS"):
                for pid, name in _ray_workers():
                    if "ReadFeatures" in name:
                        maps = open(f"/proc/{pid}/maps").read().splitlines()
                        plasma = [m for m in maps if "plasma" in m or "/dev/shm" in m]
                        big = sum(1 for m in plasma if "(deleted)" in m)
                        print(f"MEM   after {rows}: {len(plasma)} shm mappings ({big} deleted), {_status(pid)}")
        elapsed = time.monotonic() - t0
        print(f"\nMEM voxseal.ray {voxseal.ray.__file__}, target_max_block_size {ds.context.target_max_block_size}, "
              f"{len(blocks)} batches: {blocks[:12]}")
        time.sleep(0.3)
        peaks = poller.stop()
        print(f"\nMEM {rows} samples, 1 worker, {'select_columns' if select else 'columns='}, {len(blocks)} batches, {elapsed:.0f} s: worker_peak_rss_kib column {peak_col / 1024:.0f} MiB")
        for pid, p in peaks[:3]:
            print(f"MEM   pid {pid} {poller.names.get(pid, '?')[:60]}: " +
                  ", ".join(f"{k} {v / 1024:.0f}" for k, v in p.items()) + " MiB (peaks)")
