"""The team server's administration, asked over REST (``mlops-lab token|users|permissions`` with
``MLOPS_LAB_TRACKING_URI``): the same operations as ``Access``, as the token's user."""

from __future__ import annotations

import json

from ..remote import RemoteClient, dumps


class TeamClient:
    def __init__(self, client: RemoteClient):
        self.client = client

    def _send(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.client.request(
            method,
            path,
            body=None if body is None else dumps(body),
            headers={"Content-Type": "application/json"},
            idempotent=method in ("PUT", "DELETE"),
        )
        return json.loads(response.content)

    def whoami(self) -> dict:
        return self.client.get_json("api/whoami")

    def overview(self) -> dict:
        """What the lab's Team section shows: who one is, one's tokens, the grants one can see, and
        for an admin the team's users."""
        who = self.whoami()
        return {
            "server": self.client.url,
            "whoami": who,
            "tokens": self.tokens(),
            "permissions": self.permissions(),
            "users": self.users() if who["admin"] else None,
        }

    def create_token(self, user: str | None, *, note: str = "", expires_in_days: float | None = None):
        body = {"note": note, "expires_in_days": expires_in_days, **({"user": user} if user else {})}
        answer = self._send("POST", "api/team/tokens", body)
        return answer["id"], answer["token"]

    def tokens(self, user: str | None = None) -> list[dict]:
        return self.client.get_json("api/team/tokens", {"user": user} if user else None)["tokens"]

    def revoke_token(self, token_id: str) -> None:
        self._send("DELETE", f"api/team/tokens/{token_id}")

    def users(self) -> list[dict]:
        return self.client.get_json("api/team/users")["users"]

    def set_admin(self, user: str, is_admin: bool) -> None:
        self._send("PUT", f"api/team/users/{user}", {"admin": is_admin})

    def set_permission(self, kind: str, name: str, grantee: str, level: str | None) -> None:
        self._send("PUT", "api/team/permissions", {"kind": kind, "name": name, "grantee": grantee, "level": level})

    def permissions(self, kind: str | None = None, name: str | None = None) -> list[dict]:
        params = {key: value for key, value in (("kind", kind), ("name", name)) if value}
        return self.client.get_json("api/team/permissions", params or None)["permissions"]
