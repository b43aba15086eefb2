"""The file-state cache: (host, path, inode, mtime, size) → sha256, so an unchanged file is not read again.

Like DVC's state database it trusts the modification time: a rewrite within the same mtime tick at
the same size is missed.
"""

from __future__ import annotations

import socket
from typing import Protocol

from sqlalchemy import select

from .engine import Database
from .models import FileState

HOST = socket.gethostname()


class FileStateStore(Protocol):
    def file_hash(self, path: str, inode: int, mtime_ns: int, size: int) -> str | None: ...

    def remember_file_hash(self, path: str, inode: int, mtime_ns: int, size: int, digest: str) -> None: ...


class SqlFileStateStore(FileStateStore):
    def __init__(self, db: Database):
        self.db = db

    def file_hash(self, path: str, inode: int, mtime_ns: int, size: int) -> str | None:
        """The cached hash of a file on this host, if it has not changed since it was hashed."""
        state = FileState.__table__.c
        with self.db.reading() as conn:
            return conn.execute(
                select(state.hash).where(
                    state.host == HOST,
                    state.path == path,
                    state.inode == inode,
                    state.mtime_ns == mtime_ns,
                    state.size == size,
                )
            ).scalar()

    def remember_file_hash(self, path: str, inode: int, mtime_ns: int, size: int, digest: str) -> None:
        stmt = self.db.insert(FileState)
        values = {"inode": inode, "mtime_ns": mtime_ns, "size": size, "hash": digest}
        with self.db.writing() as conn:
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["host", "path"], set_=values),
                [{"host": HOST, "path": path, **values}],
            )
