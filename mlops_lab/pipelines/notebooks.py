"""Notebook steps: what of a notebook counts (its code cells), params injected as papermill does,
and execution through nbclient on a kernel of its own, as a run."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .spec import PARAMETERS_TAG, PipelineError, Step, parameters_cell, read_notebook

INJECTED_TAG = "injected-parameters"
FLUSH_TAG = "mlops-lab-flush"
# The last cell run (and left out of the notebook kept): what the notebook's runs logged is written
# before the kernel stops, so stopping it may be quick.
FLUSH_SOURCE = (
    "import sys\nif 'mlops_lab.workspace' in sys.modules:\n    sys.modules['mlops_lab.workspace'].flush_logged()"
)
KERNEL_SHUTDOWN_SECONDS = 1.0  # ipykernel sometimes takes 3 s more to exit after saying it will


def code_cells(notebook) -> list[list]:
    """[cell number, sha256 of its source] of each code cell: markdown and outputs do not count."""
    return [
        [number, hashlib.sha256(cell["source"].encode()).hexdigest()]
        for number, cell in enumerate(notebook["cells"], start=1)
        if cell["cell_type"] == "code" and INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])
    ]


def code_source(notebook) -> str:
    """The code of a notebook's code cells, one after another: the source of its step's run."""
    return "\n\n".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "code")


def inject_params(notebook, params: dict) -> None:
    """A cell tagged ``injected-parameters`` after the ``parameters`` cell sets each param (papermill's way)."""
    import nbformat

    if not params:
        return
    index = parameters_cell(notebook)
    source = "# Parameters\n" + "".join(f"{key} = {value!r}\n" for key, value in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    notebook.cells.insert(index + 1, cell)


class CellFailed(Exception):
    """A cell raised, ran too long or its kernel died: which one and what (the message), and the
    notebook as far as it ran."""

    def __init__(self, message: str, notebook):
        super().__init__(message)
        self.notebook = notebook


async def execute(step: Step, path: Path, cwd: Path, env: dict, where: str):
    """Run the notebook with the step's params on a fresh kernel; returns the executed notebook, or
    raises CellFailed(message, executed notebook)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    read_notebook(path, where)  # a clear error if it is not one
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # a notebook saved from an earlier papermill run keeps no old values
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            raise PipelineError(f"{where}: {path.name} holds a cell tagged {INJECTED_TAG!r}; remove it")
    inject_params(notebook, step.params)
    notebook.cells.append(nbformat.v4.new_code_cell(FLUSH_SOURCE, metadata={"tags": [FLUSH_TAG]}))
    kernel = notebook.metadata.get("kernelspec", {}).get("name") or "python3"
    client = NotebookClient(
        notebook, timeout=step.timeout, kernel_name=kernel, resources={"metadata": {"path": str(cwd)}}
    )
    client.km = client.create_kernel_manager()
    client.km.shutdown_wait_time = KERNEL_SHUTDOWN_SECONDS
    # The executed notebook names the kernel that ran it, as JupyterLab would: one whose kernelspec
    # differs ("Python 3" saved, "Python 3 (ipykernel)" installed) opens marked modified.
    spec = client.km.kernel_spec
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": spec.display_name, "language": spec.language}
    client.owns_km = True  # nbclient shuts down a kernel it started: this one too
    running = [0]  # the index of the cell being run: the one that failed, when something fails
    client.on_cell_execute = lambda cell, cell_index: running.__setitem__(0, cell_index)
    with tempfile.TemporaryFile() as log:  # the kernel's own stderr: shown only if it dies
        try:
            await client.async_execute(env={**os.environ, **env}, stderr=log)
        except CellExecutionError as error:
            raise CellFailed(
                f"cell {_number(notebook, running[0])} of {path.name} raised {error.ename}: {error.evalue}",
                _kept(notebook),
            ) from None
        except CellTimeoutError:
            raise CellFailed(
                f"cell {_number(notebook, running[0])} of {path.name} ran past the step's timeout of {step.timeout} s",
                _kept(notebook),
            ) from None
        except DeadKernelError:
            log.seek(0)
            said = log.read().decode(errors="replace").strip().splitlines()
            last = [line for line in said if "Kernel is running over TCP" not in line][-3:]  # its notice at start
            raise CellFailed(
                f"the kernel running {path.name} died (killed, or out of memory) in cell {_number(notebook, running[0])}"
                + (f": {' / '.join(last)}" if last else ""),
                _kept(notebook),
            ) from None
    return _kept(notebook)


def _kept(notebook):
    """The executed notebook as it is kept: without the flush cell."""
    notebook.cells = [c for c in notebook.cells if FLUSH_TAG not in c.get("metadata", {}).get("tags", [])]
    return notebook


def _number(notebook, index: int) -> int:
    """A cell's number as the source notebook shows it (the cells this module adds not counted)."""
    added = {INJECTED_TAG, FLUSH_TAG}
    return sum(1 for cell in notebook.cells[: index + 1] if not added & set(cell.get("metadata", {}).get("tags", [])))


__all__ = ["PARAMETERS_TAG", "CellFailed", "code_cells", "code_source", "execute", "inject_params"]
