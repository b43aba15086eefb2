"""Where data lives: one resolution order for the kernel, the server and the CLI.

explicit argument → ``MLOPS_LAB_TRACKING_URI`` (a team server, with ``MLOPS_LAB_TOKEN``, or inside
JupyterHub the hub's API token) or ``MLOPS_LAB_DB_URL`` / ``MLOPS_LAB_ARTIFACTS`` → a
``mlops_lab.toml`` found walking up from the starting directory → the per-user home
(``MLOPS_LAB_HOME`` or ``~/.mlops_lab``).  A notebook in any sub-folder and the sidebar therefore
see the same store.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInputError

CONFIG_FILE = "mlops_lab.toml"


class ConfigError(InvalidInputError):
    """The configuration names something that cannot be used."""


@dataclass(frozen=True)
class StoreLocation:
    db_url: str  # a database URL, or a team server's http(s):// address (which holds the artifacts too)
    artifacts: str
    source: str  # a sentence saying why these were chosen, shown by `mlops-lab info`
    token: str | None = field(default=None, repr=False)  # a team server's token

    @property
    def is_team_server(self) -> bool:
        return is_server_url(self.db_url)

    def public(self) -> dict:
        """What may be shown (logs, `mlops-lab info`, the lab's info route): passwords redacted."""
        return {"db_url": redact(self.db_url), "artifacts": redact(self.artifacts), "source": self.source}

    def environment(self) -> dict[str, str]:
        """The variables that make a child process resolve this same location, without putting a
        password on its command line (where any user's `ps` reads it)."""
        if self.is_team_server:
            return {"MLOPS_LAB_TRACKING_URI": self.db_url, "MLOPS_LAB_TOKEN": self.token or ""}
        return {"MLOPS_LAB_DB_URL": self.db_url, "MLOPS_LAB_ARTIFACTS": self.artifacts}


_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]*)@")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``postgresql://me:***@db/runs``): for logs,
    answers and anything else a person or another process may see."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def is_server_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def server_token() -> str | None:
    """The token for a team server: MLOPS_LAB_TOKEN, else (in a JupyterHub-spawned kernel) the hub's."""
    return os.environ.get("MLOPS_LAB_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN") or None


def default_home() -> Path:
    return Path(os.environ.get("MLOPS_LAB_HOME") or Path.home() / ".mlops_lab").expanduser()


def _find_config(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _resolve_relative(value: str, base: Path, *, is_db: bool) -> str:
    """Relative paths in a config file are relative to that file, not to the process's cwd."""
    if is_db:
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            rel = value.removeprefix("sqlite:///")
            if rel and rel != ":memory:" and not Path(rel).is_absolute():
                return _sqlite_url((base / rel).resolve())
        return value
    if "://" in value:
        return value
    return str((base / value).expanduser().resolve())


def resolve(
    db_url: str | None = None,
    artifacts: str | None = None,
    start_dir: str | os.PathLike | None = None,
) -> StoreLocation:
    """Resolve the store location; each part is taken from the first place that names it."""
    if db_url and is_server_url(db_url):
        return StoreLocation(db_url, db_url, "team server from the explicit argument", server_token())
    if not db_url and os.environ.get("MLOPS_LAB_TRACKING_URI"):
        uri = os.environ["MLOPS_LAB_TRACKING_URI"]
        if not is_server_url(uri):
            raise ConfigError(f"MLOPS_LAB_TRACKING_URI is a team server's http(s):// address, got {uri!r}")
        return StoreLocation(uri, uri, "team server from MLOPS_LAB_TRACKING_URI", server_token())
    reasons = []
    if db_url:
        reasons.append("database from the explicit argument")
    elif os.environ.get("MLOPS_LAB_DB_URL"):
        db_url = os.environ["MLOPS_LAB_DB_URL"]
        reasons.append("database from MLOPS_LAB_DB_URL")
    if artifacts:
        reasons.append("artifacts from the explicit argument")
    elif os.environ.get("MLOPS_LAB_ARTIFACTS"):
        artifacts = os.environ["MLOPS_LAB_ARTIFACTS"]
        reasons.append("artifacts from MLOPS_LAB_ARTIFACTS")

    if not (db_url and artifacts):
        config_path = _find_config(Path(start_dir or os.getcwd()).resolve())
        if config_path is not None:
            try:
                table = tomllib.loads(config_path.read_text()).get("store", {})
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{config_path} is not valid TOML: {exc}") from exc
            if not isinstance(table, dict):
                raise ConfigError(f"{config_path}: [store] must be a table")
            base = config_path.parent
            if not db_url and table.get("db_url"):
                db_url = _resolve_relative(str(table["db_url"]), base, is_db=True)
                reasons.append(f"database from {config_path}")
            if not artifacts and table.get("artifacts"):
                artifacts = _resolve_relative(str(table["artifacts"]), base, is_db=False)
                reasons.append(f"artifacts from {config_path}")

    home = default_home()
    if not db_url:
        db_url = _sqlite_url(home / "mlops_lab.db")
        reasons.append(f"database in the per-user home {home}")
    if not artifacts:
        artifacts = str(home / "artifacts")
        reasons.append(f"artifacts in the per-user home {home}")
    return StoreLocation(db_url=db_url, artifacts=artifacts, source="; ".join(reasons))


def deployments_dir(location: StoreLocation | None = None) -> Path:
    """Where serving keeps request logs and server logs: beside a local artifact store, else in the home."""
    location = location or resolve()
    if "://" in location.artifacts:
        return default_home() / "deployments"
    return Path(location.artifacts).parent / "deployments"


def current_user() -> str:
    """The user recorded on everything a kernel writes: MLOPS_LAB_USER, else the OS user."""
    if os.environ.get("MLOPS_LAB_USER"):
        return os.environ["MLOPS_LAB_USER"]
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
