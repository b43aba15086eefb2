"""A plain ``pip install`` of the wheel, built from the sources alone, gives a lab with the panel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .lab import LabServer, launch_browser, require_chromium

ROOT = Path(__file__).parent.parent


def run(*args, cwd=None, timeout=900):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.browser
def test_wheel_from_a_clean_tree_installs_a_working_lab(tmp_path):
    require_chromium()
    # The tree as git sees it (tracked and new files), with no build output and no node_modules.
    source = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    assert not (source / "mlops_lab" / "labextension").exists()

    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ".", "-w", str(tmp_path / "dist"), cwd=source)
    [wheel] = (tmp_path / "dist").glob("mlops_lab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if ".data/data/" in n]
    assert any(n.endswith("etc/jupyter/jupyter_server_config.d/mlops_lab.json") for n in data)
    assert any(n.endswith("share/jupyter/labextensions/mlops-lab/package.json") for n in data)
    assert any("labextensions/mlops-lab/static/remoteEntry." in n for n in data)
    assert "mlops_lab/store/migrations/versions/0001_initial_schema.py" in names

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin" / "pip"), "install", "-q", str(wheel))
    assert "mlops-lab v" in run(str(venv / "bin" / "jupyter"), "labextension", "list")
    assert "mlops_lab enabled" in run(str(venv / "bin" / "jupyter"), "server", "extension", "list").replace(
        "\x1b[32m", ""
    ).replace("\x1b[0m", "")

    root = tmp_path / "notebooks"
    root.mkdir()
    server = LabServer(
        root, {"MLOPS_LAB_DB_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}, python=str(venv / "bin" / "python")
    )
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_page()
            page.goto(f"{server.url}/lab?token={server.token}")
            page.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]').click(timeout=60_000)
            page.get_by_text("No runs yet").wait_for(timeout=10_000)
            browser.close()
    finally:
        server.stop()
