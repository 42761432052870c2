"""Hugging Face `datasets`: the verified, audited reader as an `IterableDataset`.

    ds = voxseal.hf.features_dataset("s3://bucket", project="acme", requester="ana@example.com",
                                     role_arn=..., identity_secret=..., audit_bucket=...)
    for row in ds: row["log_mel"], row["mfcc"], row["sample_id"]

Streaming only: nothing is cached to disk (a map-style `Dataset` would write Arrow files of the
decrypted features to the cache directory).
"""

import datasets

from . import open_dataset

FEATURES = datasets.Features({
    "sample_id": datasets.Value("string"),
    "contractor": datasets.Value("string"),
    "prompt_id": datasets.Value("string"),
    "log_mel": datasets.Array2D(shape=(None, 80), dtype="float32"),
    "mfcc": datasets.Array2D(shape=(None, 13), dtype="float32"),
})


def _rows(url, dataset_args):
    with open_dataset(url, purpose="training", **dataset_args) as ds:
        for s in ds:
            yield {"sample_id": s.sample_id, "contractor": s.contractor, "prompt_id": s.manifest["prompt_id"],
                   "log_mel": s.log_mel, "mfcc": s.mfcc}


def features_dataset(url, **dataset_args):
    """A `datasets.IterableDataset` of the project's training features; `dataset_args` are
    `open_dataset`'s (project, requester, identity_secret, role_arn, budget, audit_bucket, ...).
    Each pass over it opens a new read session."""
    return datasets.IterableDataset.from_generator(
        _rows, features=FEATURES, gen_kwargs={"url": url, "dataset_args": dataset_args})
