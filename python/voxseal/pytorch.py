"""PyTorch: the verified, audited reader as a `torch.utils.data.IterableDataset`.

    ds = voxseal.pytorch.FeaturesDataset("s3://bucket", project="acme", requester="ana@example.com",
                                         role_arn=..., identity_secret=..., audit_bucket=...,
                                         budget=voxseal.ReadBudget(max_samples=5000))
    for row in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
        row["log_mel"], row["mfcc"], row["sample_id"]

Each pass, in each DataLoader worker, opens its own read session, unwraps the identity once and
reads a disjoint share of the samples (worker i of n: every n-th manifest from the i-th), so every
sample is read and audited once per pass. The budget is split exactly between the workers (shares
differ by at most one sample and add up to the budget). Tensors are made from the decrypted arrays in memory; nothing is written to disk.
Frames differ between samples: batch with `batch_size=None` or a padding `collate_fn`.
"""

import torch
from torch.utils.data import IterableDataset, get_worker_info

from . import open_dataset
from .budget import ReadBudget


def _split(total, part, parts):
    """Worker `part`'s share of `total`: the shares differ by at most one and add up to `total`."""
    return total // parts + (1 if part < total % parts else 0)


def _share_of(budget, part, parts):
    """Worker `part`'s budget: the workers' budgets add up to exactly the one given."""
    if budget is None or parts == 1:
        return budget
    if budget.max_samples < parts or (budget.max_bytes is not None and budget.max_bytes < parts):
        raise ValueError(f"a read budget of {budget.max_samples} samples cannot be split between {parts} "
                         "DataLoader workers: give at least one sample per worker, or use fewer workers")
    bytes_ = _split(budget.max_bytes, part, parts) if budget.max_bytes is not None else None
    return ReadBudget(max_samples=_split(budget.max_samples, part, parts), max_bytes=bytes_)


class FeaturesDataset(IterableDataset):
    """The project's training features; `dataset_args` are `open_dataset`'s (project, requester,
    identity_secret, role_arn, budget, audit_bucket, contractors, since, until, strict, ...)."""

    def __init__(self, url, **dataset_args):
        super().__init__()
        if "purpose" in dataset_args:
            raise ValueError("FeaturesDataset reads training features: do not pass purpose=")
        self.url, self.dataset_args = url, dataset_args

    def __iter__(self):
        info = get_worker_info()
        part, parts = (info.id, info.num_workers) if info else (0, 1)
        args = dict(self.dataset_args, budget=_share_of(self.dataset_args.get("budget"), part, parts))
        with open_dataset(self.url, purpose="training", **args) as ds:
            for s in ds.samples(share=(part, parts)):
                yield {"sample_id": s.sample_id, "contractor": s.contractor, "prompt_id": s.manifest["prompt_id"],
                       "log_mel": torch.from_numpy(s.log_mel), "mfcc": torch.from_numpy(s.mfcc)}
