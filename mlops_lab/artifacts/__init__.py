"""Content-addressed blobs: sha256 names, ``ab/cdef…`` layout, a JSON manifest for folders.

Local paths by default; any fsspec URL (``s3://bucket/prefix``, ``memory://x``) for teams.  The same
bytes are stored once.  A local blob is written to a temporary name, hashed as it is written, synced
to disk and only then renamed into place, so a blob's name is always the hash of its bytes (a file
that changes while it is being stored is kept under the hash of what was read).  Reads check the
hash: a corrupt blob is reported, never served, and moved aside so that the next write of the
same content repairs it; a blob of the wrong size is rewritten by the next write too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..errors import UnavailableError

CHUNK = 1 << 20
_HEX = set("0123456789abcdef")


class ArtifactError(UnavailableError):
    """A blob is missing, corrupt, or a path is not allowed."""


class BlobMissingError(ArtifactError):
    """No blob by that hash (404: asking again will not help)."""

    status = 404


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_bytes(manifest: dict[str, str]) -> bytes:
    """A folder as stored: relative path → blob hash; its sha256 is the folder's hash."""
    return json.dumps({"files": manifest}, sort_keys=True).encode()


def check_hash(value: str) -> str:
    if not (isinstance(value, str) and len(value) == 64 and set(value) <= _HEX):
        raise ArtifactError(f"not a sha256 hash: {value!r}")
    return value


class ArtifactStore:
    def __init__(self, root: str):
        self.root = root
        self.is_local = "://" not in root or root.startswith("file://")
        if self.is_local:
            self.local_root = Path(root.removeprefix("file://")).expanduser()
            self.local_root.mkdir(parents=True, exist_ok=True)
            self.fs = None
        else:
            import fsspec

            self.fs, self.fs_root = fsspec.core.url_to_fs(root)

    def _relative(self, digest: str) -> str:
        check_hash(digest)
        return f"{digest[:2]}/{digest[2:]}"

    def local_path(self, digest: str) -> Path:
        if not self.is_local:
            raise ArtifactError(f"artifact store {self.root} is not on the local disk")
        return self.local_root / self._relative(digest)

    def exists(self, digest: str, size: int | None = None) -> bool:
        """Whether the blob is there (and, when ``size`` is given, has that many bytes)."""
        if self.is_local:
            path = self.local_path(digest)
            try:
                actual = path.stat().st_size
            except FileNotFoundError:
                return False
            return size is None or actual == size
        location = f"{self.fs_root}/{self._relative(digest)}"
        return self.fs.exists(location) and (size is None or self.fs.size(location) == size)

    def missing(self, blobs: list[tuple[str, int]]) -> list[bool]:
        """For each (hash, size): whether that blob is absent or of another size (one stat each,
        without building a Path: for folders of many thousand files)."""
        if not self.is_local:
            return [not self.exists(digest, size) for digest, size in blobs]
        root, answers = str(self.local_root), []
        for digest, size in blobs:
            check_hash(digest)
            try:
                answers.append(os.stat(f"{root}/{digest[:2]}/{digest[2:]}").st_size != size)
            except FileNotFoundError:
                answers.append(True)
        return answers

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        if self.exists(digest, len(data)):
            return digest
        if self.is_local:
            self._write_local([data])
        else:
            self.fs.pipe_file(f"{self.fs_root}/{self._relative(digest)}", data)
        return digest

    def put_file(self, path: str | os.PathLike, digest: str | None = None) -> str:
        """Store a file; returns the hash of the bytes stored (``digest`` is what the caller expects:
        if the file changed meanwhile, the blob is named by what was actually read)."""
        size = os.stat(path).st_size
        if digest is not None and self.exists(digest, size):
            return digest
        if self.is_local:
            with open(path, "rb") as source:
                return self._write_local(iter(lambda: source.read(CHUNK), b""))
        digest = sha256_file(path)
        self.fs.put_file(str(path), f"{self.fs_root}/{self._relative(digest)}")
        if sha256_bytes(self.fs.cat_file(f"{self.fs_root}/{self._relative(digest)}")) != digest:
            raise ArtifactError(f"{path} changed while it was being stored in {self.root}; log it again")
        return digest

    def put_files(self, paths: list[str]) -> list[str]:
        """Store many (small) files at once; returns each one's hash.  Locally, one ``os.sync`` for
        all of them instead of an fsync each: 3,000 files of a data loader are stored in a blink,
        and still no blob has its name before its bytes are on disk."""
        if not self.is_local or not hasattr(os, "sync"):
            return [self.put_file(path) for path in paths]
        incoming: list[tuple[Path, str]] = []
        try:
            for path in paths:
                digest = hashlib.sha256()
                with (
                    open(path, "rb") as source,
                    tempfile.NamedTemporaryFile(dir=self.local_root, prefix=".incoming-", delete=False) as handle,
                ):
                    incoming.append((Path(handle.name), ""))
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        handle.write(chunk)
                incoming[-1] = (incoming[-1][0], digest.hexdigest())
            os.sync()  # every file written above is on disk before any gets its name
            folders = set()
            for temporary, digest in incoming:
                target = self.local_path(digest)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temporary, target)
                folders.add(target.parent)
            for folder in folders:
                _sync_folder(folder)
        finally:
            for temporary, _ in incoming:
                temporary.unlink(missing_ok=True)
        return [digest for _, digest in incoming]

    def _write_local(self, chunks) -> str:
        """Write ``chunks`` to a temporary file while hashing them, sync it, and rename it to its hash:
        a reader never sees half a blob, and a blob's name is the hash of its bytes."""
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=self.local_root, prefix=".incoming-", delete=False) as handle:
            incoming = Path(handle.name)
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before it has a name anyone trusts
            except BaseException:
                incoming.unlink(missing_ok=True)
                raise
        target = self.local_path(digest.hexdigest())
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming, target)
        except BaseException:
            incoming.unlink(missing_ok=True)
            raise
        _sync_folder(target.parent)
        return digest.hexdigest()

    def put_dir(self, folder: str | os.PathLike) -> tuple[str, int]:
        """Store every file below ``folder``; returns the manifest's hash and the total size."""
        folder = Path(folder)
        manifest, total = {}, 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            manifest[path.relative_to(folder).as_posix()] = self.put_file(path)
            total += path.stat().st_size
        return self.put_bytes(manifest_bytes(manifest)), total

    def get_bytes(self, digest: str) -> bytes:
        try:
            if self.is_local:
                data = self.local_path(digest).read_bytes()
            else:
                data = self.fs.cat_file(f"{self.fs_root}/{self._relative(digest)}")
        except FileNotFoundError:
            raise BlobMissingError(f"blob {digest} is missing from the artifact store {self.root}") from None
        if sha256_bytes(data) != digest:
            if self.is_local:  # moved aside: the next write of the same content puts a good copy back
                path = self.local_path(digest)
                path.replace(path.with_name(path.name + ".corrupt"))
            raise ArtifactError(f"blob {digest} in {self.root} is corrupt: its content no longer matches its hash")
        return data

    def open_blob(self, digest: str):
        """A blob to read in chunks (for streaming it on; the reader checks the hash) and its size."""
        try:
            if self.is_local:
                path = self.local_path(digest)
                return path.open("rb"), path.stat().st_size
            remote = f"{self.fs_root}/{self._relative(digest)}"
            return self.fs.open(remote, "rb"), self.fs.size(remote)
        except FileNotFoundError:
            raise BlobMissingError(f"blob {digest} is missing from the artifact store {self.root}") from None

    def read_head(self, digest: str, limit: int) -> tuple[bytes, int]:
        """The first ``limit`` bytes of a blob and its full size: for previews, which show the start
        of a file that may be large (no hash check: a download checks, a preview only shows)."""
        try:
            if self.is_local:
                path = self.local_path(digest)
                with path.open("rb") as file:
                    return file.read(limit), path.stat().st_size
            remote = f"{self.fs_root}/{self._relative(digest)}"
            with self.fs.open(remote, "rb") as file:
                return file.read(limit), self.fs.size(remote)
        except FileNotFoundError:
            raise BlobMissingError(f"blob {digest} is missing from the artifact store {self.root}") from None

    def get_manifest(self, digest: str) -> dict[str, str]:
        try:
            return json.loads(self.get_bytes(digest))["files"]
        except (ValueError, KeyError, TypeError):
            raise ArtifactError(f"blob {digest} is not a folder manifest") from None

    def export(self, digest: str, target: str | os.PathLike, *, is_dir: bool = False) -> Path:
        """Write a blob (or a folder from its manifest) to ``target``, checking every hash."""
        target = Path(target)
        if not is_dir:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.get_bytes(digest))
            return target
        for relative, file_digest in self.get_manifest(digest).items():
            destination = (target / relative).resolve()
            if not destination.is_relative_to(target.resolve()):
                raise ArtifactError(f"manifest {digest} names a path outside its folder: {relative!r}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(self.get_bytes(file_digest))
        return target


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; elsewhere there is nothing to open)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


__all__ = ["ArtifactError", "ArtifactStore", "BlobMissingError", "check_hash", "sha256_bytes", "sha256_file"]
