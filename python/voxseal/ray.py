"""Ray Data: the same verified, audited reader across Ray workers.

    ds = voxseal.ray.read_features("s3://bucket", project="acme", requester="ana@example.com",
                                   role_arn=TRAINING_ROLE_ARN, identity_secret="voxseal/acme/training",
                                   audit_bucket=AUDIT_BUCKET, budget=50_000)

The driver lists the manifests in scope (keys only, through a `catalog` session) and splits them
into read tasks. Each task opens its own training session with its own credentials (the worker's
instance role, or the environment), unwraps the identity through KMS once, reads its share with a
budget of exactly that share, audits every sample to its own log shipped to the audit bucket, and
yields blocks of decrypted features. Nothing is written to disk but the audit records, so each
task first checks that Ray's temp directory on its node is in memory (tmpfs): when the object store
is full, Ray puts objects in files there, even with spilling off (python/README.md).
"""

import math
import os
import resource
import tempfile

import numpy as np
import ray

from . import open_dataset, open_session
from .budget import ReadBudget, ReadBudgetExceeded
from .dataset import Manifests

# Bytes of features per block (about 75 three-second samples). read_features sets its dataset's
# target_max_block_size to this too: with Ray's default (128 MiB) Ray Data merges a read task's
# blocks before handing them on, and a worker's memory grows with what it reads
# (docs/performance.md, "Peak memory per worker").
BLOCK_BYTES = 8 << 20


COLUMNS = ("sample_id", "contractor", "prompt_id", "log_mel", "mfcc", "worker_peak_rss_kib")


def _objects(values):
    """A 1-d object array of `values` (tensors of different shapes stay separate arrays)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # one by one: a slice assignment would broadcast equal shapes
        out[i] = v
    return out


# How each column is made from the rows of a block.
_COLUMN_OF = {
    "sample_id": lambda rows: np.array([r.sample_id for r in rows]),
    "contractor": lambda rows: np.array([r.contractor for r in rows]),
    "prompt_id": lambda rows: np.array([r.manifest["prompt_id"] for r in rows]),
    "log_mel": lambda rows: _objects([r.log_mel for r in rows]),
    "mfcc": lambda rows: _objects([r.mfcc for r in rows]),
    # The worker's peak resident memory so far (KiB): docs/performance.md reports it.
    "worker_peak_rss_kib": lambda rows: np.full(len(rows), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
}


def _block(rows, columns=COLUMNS):
    """A block of `rows` holding only `columns`, each made only when selected."""
    from ray.data.block import BlockAccessor

    return BlockAccessor.batch_to_block({c: _COLUMN_OF[c](rows) for c in columns})


class ObjectStoreOnDisk(RuntimeError):
    """Ray's temp directory is not in memory: decrypted blocks could land on disk."""


def fs_type(path):
    """The type of the file system holding `path` (from /proc/self/mounts), or None if unknown."""
    path = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                mount, fstype = line.split()[1:3]
                mount = mount.replace("\\040", " ")
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, fstype
    except OSError:
        return None
    return kind


def check_store_in_memory(session_dir, allow_disk=False):
    """Raises ObjectStoreOnDisk unless `session_dir` (where Ray's object store falls back to files
    when shared memory is full) is on tmpfs or ramfs, or the caller says its disk is encrypted."""
    kind = fs_type(session_dir) if session_dir else None
    if allow_disk or kind in ("tmpfs", "ramfs"):
        return
    raise ObjectStoreOnDisk(
        f"Ray's temp directory {session_dir} is on {kind or 'an unknown file system'}, not in memory: "
        "when the object store is full Ray puts objects (here: decrypted features) in files there. "
        "Start Ray with its temp directory on tmpfs (ray start --temp-dir=/dev/shm/ray, or "
        "ray.init(_temp_dir=...)), or pass allow_disk_object_store=True if that disk is encrypted"
    )


def _session_dir():
    """This node's Ray session directory (Ray has no public API for it), or None if unknown,
    which check_store_in_memory treats as disk."""
    try:
        return ray._private.worker.global_worker.node.get_session_dir_path()
    except AttributeError:
        return None


def _row_bytes(sample, columns):
    """The bytes a row adds to a block of `columns`: its tensors, plus 64 for the small fields.
    Counting only what the block holds keeps each yielded block at BLOCK_BYTES, which Ray Data
    then hands on as it is instead of merging it with the next."""
    return 64 + sum(getattr(sample, c).nbytes for c in ("log_mel", "mfcc") if c in columns)


def _read_task(url, keys, project, session_args, identity_secret, audit_bucket, allow_disk, columns=COLUMNS):
    def read():
        check_store_in_memory(_session_dir(), allow_disk)
        with open_dataset(url, project=project, purpose="training", identity_secret=identity_secret,
                          budget=ReadBudget(max_samples=len(keys)), audit_bucket=audit_bucket,
                          audit_dir=tempfile.mkdtemp(prefix="voxseal-reads-"), **session_args) as ds:
            rows, size = [], 0
            for key in keys:
                sample = ds.fetch(ds.index.get(key))
                rows.append(sample)
                size += _row_bytes(sample, columns)
                if size >= BLOCK_BYTES:
                    yield _block(rows, columns)
                    rows, size = [], 0
            if rows:
                yield _block(rows, columns)

    return read


class FeaturesDatasource(ray.data.Datasource):
    """The training features of a project, as a Ray Data datasource."""

    def __init__(self, url, *, project, requester, identity_secret, audit_bucket, budget,
                 allow_disk_object_store=False, columns=COLUMNS, **session_args):
        super().__init__()
        self.columns = tuple(columns)
        self.url, self.project, self.identity_secret = url, project, identity_secret
        self.allow_disk = allow_disk_object_store
        self.audit_bucket = audit_bucket
        self.session_args = dict(session_args, requester=requester)
        index = open_session(url, purpose="catalog", **{k: v for k, v in self.session_args.items() if k != "reason"})
        self.keys = sorted(Manifests(index, project).keys())
        if len(self.keys) > budget:
            raise ReadBudgetExceeded(
                f"the selection holds {len(self.keys)} samples, over the budget of {budget}: "
                "narrow it (contractors=, since=, until=) or state a larger budget="
            )

    def estimate_inmemory_data_size(self):
        return None

    def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
        from ray.data.block import BlockMetadata
        from ray.data.datasource import ReadTask

        n = max(1, min(parallelism, len(self.keys)))
        size = math.ceil(len(self.keys) / n) if self.keys else 0
        tasks = []
        for i in range(0, len(self.keys), size or 1):
            share = self.keys[i:i + size]
            tasks.append(ReadTask(
                _read_task(self.url, share, self.project, self.session_args, self.identity_secret,
                           self.audit_bucket, self.allow_disk, self.columns),
                BlockMetadata(num_rows=len(share), size_bytes=None, exec_stats=None, input_files=None),
                per_task_row_limit=per_task_row_limit,
            ))
        return tasks


def read_features(url, *, project, requester, identity_secret, audit_bucket=None, budget=None,
                  parallelism=-1, allow_disk_object_store=False, columns=None, **session_args):
    """A `ray.data.Dataset` of the project's training features: columns sample_id, contractor,
    prompt_id, log_mel [frames, 80], mfcc [frames, 13] (float32), worker_peak_rss_kib.

    `budget` (samples, default: the selection's size must be stated) bounds the whole read;
    each read task refuses to run (ObjectStoreOnDisk) where Ray's temp directory is not on tmpfs,
    unless `allow_disk_object_store=True` (an encrypted disk);
    `columns` (default: all) selects columns in the read task itself: prefer it to
    `Dataset.select_columns`, which Ray Data (2.60) fuses into the read task with no block size,
    so that each read task's whole share comes out as one block held in the worker's memory;
    `session_args` are open_session's (role_arn, contractors, since, until, base is not
    supported: workers use their own credentials, endpoint_url, region_name)."""
    if budget is None:
        raise ReadBudgetExceeded("state the read's budget (budget=<samples>): a Ray read is a bulk read")
    columns = tuple(columns) if columns is not None else COLUMNS
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise ValueError(f"columns: {unknown or 'none given'}; choose among {', '.join(COLUMNS)}")
    if ray.is_initialized():
        check_store_in_memory(_session_dir(), allow_disk_object_store)
    source = FeaturesDatasource(url, project=project, requester=requester, identity_secret=identity_secret,
                                audit_bucket=audit_bucket, budget=budget,
                                allow_disk_object_store=allow_disk_object_store, columns=columns, **session_args)
    dataset = ray.data.read_datasource(source, override_num_blocks=parallelism if parallelism > 0 else None)
    # The dataset's own copy of the DataContext (taken when it was created; the caller's current
    # context is not changed): blocks of BLOCK_BYTES, not Ray's 128 MiB default (see BLOCK_BYTES).
    # A smaller target the caller set is kept.
    context = dataset.context
    context.target_max_block_size = min(context.target_max_block_size or BLOCK_BYTES, BLOCK_BYTES)
    return dataset


