"""Loaded by every IPython kernel of the environment the package is installed in (its
``etc/ipython/ipython_kernel_config.json``), so ``%%track`` works in a new notebook without
``%load_ext mlops_lab``.  ``MLOPS_LAB_AUTOLOAD=0`` turns that off; ``%load_ext mlops_lab`` still works."""

from __future__ import annotations

import os


def load_ipython_extension(ipython) -> None:
    if os.environ.get("MLOPS_LAB_AUTOLOAD", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    from .magics import register

    register(ipython)
