"""The catalogue from both tools: `voxseal catalog` (the Rust CLI, the lead's credentials) writes
what `voxseal-data catalog` writes, pyarrow reads both the same, and `voxseal erase --catalog`
removes a contractor's rows from either, leaving every other row as it was."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import voxseal
from voxseal import catalog

from conftest import AUDIT_BUCKET, BUCKET, PROJECT, run, voxseal_bin


def lead(stack, *args):
    return run([voxseal_bin(), *args, "--project", stack.dir / "proj/project.toml",
                "--lead-pub", stack.dir / "proj/lead.pub"], env={**stack.moto.env(), "NO_COLOR": "1"})


def python_catalogue(stack, out):
    session = voxseal.open_session(f"s3://{BUCKET}", purpose="catalog", requester="ana@example.com",
                                   role_arn=stack.training_role, base=stack.moto.admin, endpoint_url=stack.moto.endpoint)
    n, skipped = catalog.build(session, PROJECT, out)
    assert skipped == []
    return n


def by_sample(path):
    return sorted(pq.read_table(path).to_pylist(), key=lambda r: r["sample"])


def test_the_cli_catalogue_holds_what_the_python_one_holds(stack, tmp_path):
    python_catalogue(stack, tmp_path / "py.parquet")
    lead(stack, "catalog", "--out", tmp_path / "cli.parquet")
    cli, py = by_sample(tmp_path / "cli.parquet"), by_sample(tmp_path / "py.parquet")
    assert [r["sample"] for r in cli] == sorted(stack.manifests)
    assert cli == py
    assert pq.read_schema(tmp_path / "cli.parquet").names == [name for name, _ in catalog.COLUMNS]

    lead(stack, "catalog", "--out", tmp_path / "bob.parquet", "--contractor", "bob-02")
    assert {r["contractor"] for r in by_sample(tmp_path / "bob.parquet")} == {"bob-02"}


def test_erase_removes_a_contractor_from_catalogue_files_and_nothing_else(stack, tmp_path):
    # A catalogue that still lists carol-03, whose objects are already gone from the bucket.
    path = tmp_path / "catalog.parquet"
    python_catalogue(stack, path)
    before = pq.read_table(path).to_pylist()
    carol = [dict(r, contractor="carol-03", sample=r["sample"][:-2] + "ca") for r in before[:3]]
    catalog.write(before + carol, path)
    erase = ["erase", "--contractor", "carol-03", "--reason", "consent withdrawn, ticket 17",
             "--audit-bucket", AUDIT_BUCKET, "--catalog", path]

    listed = lead(stack, *erase, "--dry-run")
    assert f"{path}\t3 catalogue row(s)" in listed
    assert len(pq.read_table(path)) == len(before) + 3

    lead(stack, *erase, "--yes")
    assert pq.read_table(path).to_pylist() == before

    # Not a catalogue: refused before anything is deleted.
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"sample": ["x"]}), other)
    with pytest.raises(AssertionError, match="is not a Voxseal catalogue"):
        lead(stack, "erase", "--contractor", "alice-01", "--reason", "consent withdrawn, ticket 18",
             "--audit-bucket", AUDIT_BUCKET, "--catalog", other, "--yes")
    assert any(m["contractor"] == "alice-01" for m in stack.manifests.values())
    assert stack.moto.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="manifests/alice-01/")["KeyCount"] > 0
