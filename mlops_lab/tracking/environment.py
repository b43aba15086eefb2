"""What a run ran on: Python, packages, hardware (once per process), git state, notebook path.

All of it runs on the writer thread, off the user's path: a tracked cell must not wait for
``git diff`` or for the list of installed packages.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

GIT_DIFF_LIMIT = 5 * 1024 * 1024
# Runs started within this many seconds of each other share one look at git: a sweep of many
# short runs must not pay three `git` processes per run.
GIT_STATE_SECONDS = 2.0
_git_cache: dict[Path, tuple[float, dict | None]] = {}


@functools.cache
def environment_snapshot() -> dict:
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            packages[name.lower()] = dist.version
    snapshot = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": dict(sorted(packages.items())),
        "hardware": hardware(),
    }
    encoded = json.dumps(snapshot, sort_keys=True).encode()
    return {"hash": hashlib.sha256(encoded).hexdigest(), **snapshot}


def hardware() -> dict:
    info: dict = {"machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        info["memory_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if out.returncode == 0:
                info["gpus"] = [
                    dict(zip(("name", "memory", "driver"), (s.strip() for s in line.split(","))))
                    for line in out.stdout.strip().splitlines()
                ]
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(folder: str | os.PathLike | None = None) -> dict | None:
    """Commit, dirty flag and uncommitted diff of the repository holding ``folder``, if any."""
    cwd = Path(folder or os.getcwd())
    cached = _git_cache.get(cwd)
    if cached is not None and time.monotonic() - cached[0] < GIT_STATE_SECONDS:
        return cached[1]
    state = _read_git_state(cwd)
    _git_cache[cwd] = (time.monotonic(), state)
    return state


def _read_git_state(cwd: Path) -> dict | None:
    if not shutil.which("git"):
        return None
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    diff = _git(["diff", "HEAD"], cwd) if status.strip() else ""
    diff = (diff or "")[:GIT_DIFF_LIMIT]
    return {"commit": commit.strip(), "dirty": bool(status.strip()), "diff": diff}


def notebook_path(user_ns: dict | None = None) -> str | None:
    """The notebook a kernel runs: Jupyter Server tells kernels through JPY_SESSION_NAME."""
    path = os.environ.get("JPY_SESSION_NAME")
    if not path and user_ns:
        path = user_ns.get("__session__") or user_ns.get("__vsc_ipynb_file__")
    return str(path) if path else None
