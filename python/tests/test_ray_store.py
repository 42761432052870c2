"""Ray's temp directory must be in memory: a full object store puts objects in files there."""

import os

import pytest

from voxseal.ray import ObjectStoreOnDisk, check_store_in_memory, fs_type


def test_tmpfs_is_memory():
    assert fs_type("/dev/shm") == "tmpfs"
    check_store_in_memory("/dev/shm/ray/session_x")


def test_a_temp_directory_on_disk_is_refused_unless_allowed():
    here = os.path.dirname(os.path.abspath(__file__))
    kind = fs_type(here)
    if kind in ("tmpfs", "ramfs"):
        pytest.skip(f"the checkout itself is on {kind}")
    with pytest.raises(ObjectStoreOnDisk, match="not in memory.*--temp-dir"):
        check_store_in_memory(here)
    check_store_in_memory(here, allow_disk=True)


def test_the_longest_mount_wins():
    # /dev/shm is a mount inside /dev (devtmpfs or tmpfs): the deeper one names the type.
    assert fs_type("/dev/shm/a/b") == fs_type("/dev/shm")
    assert fs_type("/proc/self") == "proc"


def test_an_unknown_temp_directory_counts_as_disk():
    with pytest.raises(ObjectStoreOnDisk, match="unknown file system"):
        check_store_in_memory(None)
