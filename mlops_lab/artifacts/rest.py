"""Blobs kept by a team server: sent and fetched through it, so a kernel needs no bucket credentials.

The server stores an upload only if its bytes hash to the name it was sent under, and checks a
blob's hash again before it serves it; this client checks what it receives too.
"""

from __future__ import annotations

import json
import os

from ..errors import InvalidInputError
from ..remote import RemoteClient, dumps
from . import ArtifactError, ArtifactStore, BlobMissingError, check_hash, sha256_bytes, sha256_file


class RestArtifactStore(ArtifactStore):
    def __init__(self, client: RemoteClient):
        self.client = client
        self.root = client.url
        self.is_local = False
        self.fs = None

    def exists(self, digest: str, size: int | None = None) -> bool:
        return not self.missing([(digest, -1 if size is None else size)])[0]

    def missing(self, blobs: list[tuple[str, int]]) -> list[bool]:
        if not blobs:
            return []
        for digest, _ in blobs:
            check_hash(digest)
        response = self.client.request(
            "POST",
            "api/artifacts/missing",
            body=dumps({"blobs": [[digest, size] for digest, size in blobs]}),
            headers={"Content-Type": "application/json"},
        )
        return json.loads(response.content)["missing"]

    def _upload(self, digest: str, body) -> str:
        self.client.request(
            "PUT", f"api/artifacts/{digest}", body=body, headers={"Content-Type": "application/octet-stream"}
        )
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        if self.exists(digest, len(data)):
            return digest
        return self._upload(digest, data)

    def put_file(self, path: str | os.PathLike, digest: str | None = None) -> str:
        size = os.stat(path).st_size
        digest = digest or sha256_file(path)
        if self.exists(digest, size):
            return digest
        with open(path, "rb") as body:  # streamed; the server refuses it if the file changed meanwhile
            try:
                return self._upload(digest, body)
            except InvalidInputError:
                raise ArtifactError(f"{path} changed while it was being stored; log it again") from None

    def put_files(self, paths: list[str]) -> list[str]:
        return [self.put_file(path) for path in paths]

    def get_bytes(self, digest: str) -> bytes:
        check_hash(digest)
        try:
            data = self.client.request("GET", f"api/artifacts/{digest}").content
        except LookupError:
            raise BlobMissingError(f"blob {digest} is missing from the team server's artifact store") from None
        if sha256_bytes(data) != digest:
            raise ArtifactError(f"blob {digest} arrived corrupt from {self.root}: its content does not match its hash")
        return data

    def read_head(self, digest: str, limit: int) -> tuple[bytes, int]:
        check_hash(digest)
        response = self.client.request("GET", f"api/artifacts/{digest}", params={"head": str(int(limit))})
        return response.content, int(response.headers["X-Blob-Size"])
