"""Content-addressed blobs on the local disk and on an fsspec URL."""

from __future__ import annotations

import pytest

from mlops_lab.artifacts import ArtifactError, ArtifactStore, sha256_bytes


@pytest.fixture(params=["local", "memory"])
def blobs(request, tmp_path):
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "blobs"))
    return ArtifactStore(f"memory://blobs-{tmp_path.name}")


def test_same_bytes_stored_once_under_their_hash(blobs, tmp_path):
    digest = blobs.put_bytes(b"hello")
    assert digest == sha256_bytes(b"hello") and blobs.put_bytes(b"hello") == digest
    (tmp_path / "f.txt").write_bytes(b"hello")
    assert blobs.put_file(tmp_path / "f.txt") == digest
    assert blobs.get_bytes(digest) == b"hello"
    if blobs.is_local:
        assert blobs.local_path(digest).relative_to(blobs.local_root).parts == (digest[:2], digest[2:])


def test_folders_through_a_manifest(blobs, tmp_path):
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "a.bin").write_bytes(b"\x00\x01")
    (src / "deep" / "b.txt").write_text("b")
    digest, size = blobs.put_dir(src)
    assert size == 3 and set(blobs.get_manifest(digest)) == {"a.bin", "deep/b.txt"}
    out = blobs.export(digest, tmp_path / "out", is_dir=True)
    assert (out / "deep" / "b.txt").read_text() == "b"


def test_missing_and_corrupt_blobs_are_reported_not_served(tmp_path):
    blobs = ArtifactStore(str(tmp_path / "blobs"))
    digest = blobs.put_bytes(b"precious")
    blobs.local_path(digest).write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="corrupt"):
        blobs.get_bytes(digest)
    with pytest.raises(ArtifactError, match="missing"):
        blobs.get_bytes(sha256_bytes(b"never stored"))
    with pytest.raises(ArtifactError, match="not a sha256"):
        blobs.get_bytes("../../etc/passwd")


def test_manifest_cannot_write_outside_its_folder(tmp_path):
    import json

    blobs = ArtifactStore(str(tmp_path / "blobs"))
    inner = blobs.put_bytes(b"x")
    evil = blobs.put_bytes(json.dumps({"files": {"../../escaped.txt": inner}}).encode())
    with pytest.raises(ArtifactError, match="outside its folder"):
        blobs.export(evil, tmp_path / "out" / "here", is_dir=True)
    assert not (tmp_path / "escaped.txt").exists()


def test_a_blob_is_named_by_what_was_stored_even_if_the_file_changed(tmp_path):
    store = ArtifactStore(str(tmp_path / "blobs"))
    path = tmp_path / "growing.log"
    path.write_bytes(b"first line\n")
    expected = sha256_bytes(b"first line\n")  # what the caller hashed a moment ago
    with open(path, "ab") as handle:
        handle.write(b"appended before it was stored\n")
    stored = store.put_file(path, expected)
    assert stored == sha256_bytes(path.read_bytes()) != expected
    assert store.get_bytes(stored) == path.read_bytes() and not store.exists(expected)
    assert not list((tmp_path / "blobs").glob(".incoming-*"))  # no temporary file left behind


def test_a_damaged_blob_is_repaired_by_the_next_write_of_its_content(tmp_path):
    store = ArtifactStore(str(tmp_path / "blobs"))
    digest = store.put_bytes(b"model weights" * 100)
    path = store.local_path(digest)
    damaged = bytearray(path.read_bytes())
    damaged[10] ^= 0xFF  # same size, one bit flipped
    path.write_bytes(bytes(damaged))
    with pytest.raises(ArtifactError, match="corrupt"):
        store.get_bytes(digest)  # reported, never served, and moved aside
    assert store.put_bytes(b"model weights" * 100) == digest
    assert store.get_bytes(digest) == b"model weights" * 100
    path.write_bytes(b"model weights")  # truncated: the size tells, before any read
    assert store.put_bytes(b"model weights" * 100) == digest
    assert store.get_bytes(digest) == b"model weights" * 100
