"""An identity provider for browser tests of a shared lab: each browser names its person in a
header (as an authenticating proxy would), the lab's token still guards the door.  JupyterHub's
own provider does the same job in production: it names the hub's user."""

from __future__ import annotations

import inspect

from jupyter_server.auth.identity import IdentityProvider, User


class NamedByHeader(IdentityProvider):
    async def get_user(self, handler):
        user = super().get_user(handler)
        if inspect.isawaitable(user):
            user = await user
        name = handler.request.headers.get("X-Lab-User")
        if user is None or not name:
            return user
        return User(username=name, name=name, display_name=name)
