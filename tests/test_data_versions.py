"""Data versions: hashing with the state cache, checkout of a run, dataset diffs."""

from __future__ import annotations

import os

import mlops_lab as ml
from mlops_lab.artifacts import sha256_file
from mlops_lab.tracking.capture import cached_file_hash


def test_unchanged_files_are_not_read_again(tracker, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1 << 20) * 8)
    first = cached_file_hash(tracker.store, path)
    assert first == sha256_file(path)
    # Same size and modification time, other bytes: the cache answers without reading the file,
    # which is how it makes the second hash of a large file cost a stat and a lookup.
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.write(b"X")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cached_file_hash(tracker.store, path) == first
    # A real change (a new modification time) is hashed again.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cached_file_hash(tracker.store, path) == sha256_file(path) != first


def test_logged_files_use_the_cache(tracker, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    with ml.start_run() as run:
        ml.log_dataset(data)
        ml.log_artifact(data, "copy.csv")
    record = ml.get_run(run.id)
    assert record.datasets[0]["hash"] == record.artifacts[0]["hash"] == sha256_file(data)
    assert tracker.store.file_hash(str(data.resolve()), *(lambda s: (s.st_ino, s.st_mtime_ns, s.st_size))(data.stat()))
