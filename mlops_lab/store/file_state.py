"""The file-state cache: (host, path, inode, mtime, size) → sha256, so an unchanged file is not read again.

Like DVC's state database it trusts the modification time: a rewrite within the same mtime tick at
the same size is missed.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Protocol

from sqlalchemy import select

from ..artifacts import sha256_file
from .engine import Database
from .models import FileState

HOST = socket.gethostname()


FileKey = tuple[str, int, int, int]  # path, inode, mtime_ns, size


def cached_hashes(store: "FileStateStore", paths: list[Path]) -> dict[str, str]:
    """sha256 of each file by its resolved path, read only when its inode, mtime or size changed
    since it was last hashed (one cache lookup for all of them)."""
    keys = {}
    for path in paths:
        resolved = Path(path).resolve()
        info = resolved.stat()
        keys[str(resolved)] = (str(resolved), info.st_ino, info.st_mtime_ns, info.st_size)
    known = store.file_hashes(list(keys.values()))
    fresh = [(key, sha256_file(key[0])) for path, key in keys.items() if path not in known]
    if fresh:
        store.remember_file_hashes(fresh)
        known.update({key[0]: digest for key, digest in fresh})
    return known


QUERY_CHUNK = 5000  # paths per query: under every engine's limit on bound parameters (SQLite: 32,766)


class FileStateStore(Protocol):
    def file_hashes(self, keys: list[FileKey], host: str = HOST) -> dict[str, str]: ...

    def remember_file_hashes(self, hashed: list[tuple[FileKey, str]], host: str = HOST) -> None: ...


class SqlFileStateStore(FileStateStore):
    def __init__(self, db: Database):
        self.db = db

    def file_hashes(self, keys: list[FileKey], host: str = HOST) -> dict[str, str]:
        """The cached hashes of files on ``host`` that have not changed since they were hashed,
        by path (one query per few hundred files: a folder of 100,000 is looked up in a blink)."""
        state = FileState.__table__.c
        wanted = {key[0]: key for key in keys}
        found: dict[str, str] = {}
        paths = list(wanted)
        with self.db.reading() as conn:
            for start in range(0, len(paths), QUERY_CHUNK):
                rows = conn.execute(
                    select(state.path, state.inode, state.mtime_ns, state.size, state.hash).where(
                        state.host == host, state.path.in_(paths[start : start + QUERY_CHUNK])
                    )
                ).all()
                for path, inode, mtime_ns, size, digest in rows:
                    if wanted[path] == (path, inode, mtime_ns, size):
                        found[path] = digest
        return found

    def remember_file_hashes(self, hashed: list[tuple[FileKey, str]], host: str = HOST) -> None:
        if not hashed:
            return
        stmt = self.db.insert(FileState)
        excluded = stmt.excluded
        set_ = {column: excluded[column] for column in ("inode", "mtime_ns", "size", "hash")}
        rows = [
            {"host": host, "path": path, "inode": inode, "mtime_ns": mtime_ns, "size": size, "hash": digest}
            for (path, inode, mtime_ns, size), digest in hashed
        ]
        with self.db.writing() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["host", "path"], set_=set_), rows)
