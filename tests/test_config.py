"""Where data lives: argument → environment → mlops_lab.toml (walking up) → per-user home."""

from __future__ import annotations

import pytest

from mlops_lab.config import ConfigError, resolve


def test_default_is_the_per_user_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_LAB_HOME", str(tmp_path / "home"))
    location = resolve(start_dir=tmp_path)
    assert location.db_url == f"sqlite:///{tmp_path / 'home' / 'mlops_lab.db'}"
    assert location.artifacts == str(tmp_path / "home" / "artifacts")
    assert "per-user home" in location.source


def test_config_file_found_from_a_sub_folder_with_relative_paths(tmp_path):
    (tmp_path / "mlops_lab.toml").write_text('[store]\ndb_url = "sqlite:///runs.db"\nartifacts = "blobs"\n')
    deep = tmp_path / "notebooks" / "2026"
    deep.mkdir(parents=True)
    location = resolve(start_dir=deep)
    assert location.db_url == f"sqlite:///{tmp_path / 'runs.db'}"  # relative to the file, not to the notebook
    assert location.artifacts == str(tmp_path / "blobs")
    assert str(tmp_path / "mlops_lab.toml") in location.source


def test_environment_beats_file_and_argument_beats_environment(tmp_path, monkeypatch):
    (tmp_path / "mlops_lab.toml").write_text('[store]\ndb_url = "sqlite:///file.db"\nartifacts = "s3://bucket/x"\n')
    monkeypatch.setenv("MLOPS_LAB_DB_URL", "postgresql://env/db")
    location = resolve(start_dir=tmp_path)
    assert location.db_url == "postgresql://env/db" and location.artifacts == "s3://bucket/x"
    location = resolve("sqlite:////explicit.db", start_dir=tmp_path)
    assert location.db_url == "sqlite:////explicit.db" and "explicit argument" in location.source


def test_broken_config_file_is_a_clear_error(tmp_path):
    (tmp_path / "mlops_lab.toml").write_text("[store\nthis is not toml")
    with pytest.raises(ConfigError, match="mlops_lab.toml is not valid TOML"):
        resolve(start_dir=tmp_path)
    (tmp_path / "mlops_lab.toml").write_text('store = "flat"\n')
    with pytest.raises(ConfigError, match=r"\[store\] must be a table"):
        resolve(start_dir=tmp_path)


def test_passwords_never_shown(tmp_path, monkeypatch, capsys):
    from mlops_lab.cli import main
    from mlops_lab.config import redact

    assert redact("postgresql+psycopg://me:hunter2@db:5432/runs") == "postgresql+psycopg://me:***@db:5432/runs"
    assert redact("s3://KEY:SECRET@bucket/x") == "s3://KEY:***@bucket/x"
    assert redact("sqlite:////tmp/runs.db") == "sqlite:////tmp/runs.db"
    monkeypatch.setenv("MLOPS_LAB_DB_URL", "postgresql://me:hunter2@db.invalid/runs")
    location = resolve()
    assert "hunter2" not in str(location.public()) and location.db_url.endswith("hunter2@db.invalid/runs")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "me:***@db.invalid" in out and "hunter2" not in out
    from mlops_lab.store import Database, StoreError

    with pytest.raises(StoreError) as info:  # messages name the store without its password
        Database("postgresql+psycopg://me:hunter2@127.0.0.1:1/runs?connect_timeout=2")
    assert "me:***@127.0.0.1" in str(info.value) and "hunter2" not in str(info.value)
