"""MLflow's formats as ours: a run's artifact folders, an MLflow model folder's scikit-learn
estimator, MLflow's datasets as dataset versions and back."""

from __future__ import annotations

import hashlib
import json

from ..store.events import now_ms
from ..store.models import MAX_KEY_LENGTH


def list_level(rows: list[dict], folder: str, *, names_only: bool) -> list[dict]:
    """The entries one level under ``folder`` of a run's artifact rows (a file's folders are implied)."""
    prefix = f"{folder}/" if folder else ""
    entries: dict[str, dict] = {}
    for row in rows:
        path = row["path"]
        if not path.startswith(prefix) or path == folder:
            continue
        head, _, rest = path[len(prefix) :].partition("/")
        full = prefix + head
        shown = head if names_only else full
        if rest or row["kind"] == "dir":
            entries.setdefault(full, {"path": shown, "is_dir": True})
        else:
            entries[full] = {"path": shown, "is_dir": False, "file_size": row["size"]}
    return [entries[k] for k in sorted(entries)]


def mlmodel_sklearn(mlmodel: bytes, files: dict[str, dict], artifacts) -> tuple[object | None, dict]:
    """The scikit-learn estimator of an MLflow model folder (MLmodel + model.pkl or model.skops),
    and our signature of it; (None, {}) for any other flavor."""
    import yaml

    try:
        described = yaml.safe_load(mlmodel) or {}
        flavor = (described.get("flavors") or {}).get("sklearn")
    except (yaml.YAMLError, AttributeError):
        return None, {}
    if not isinstance(flavor, dict) or flavor.get("pickled_model") not in files:
        return None, {}
    data = artifacts.get_bytes(files[flavor["pickled_model"]]["hash"])
    if flavor.get("serialization_format") == "skops":
        import skops.io

        estimator = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    else:
        import pickle

        estimator = pickle.loads(data)  # cloudpickle's output loads with pickle
    signature = {}
    try:
        inputs = json.loads((described.get("signature") or {}).get("inputs") or "[]")
        names = [spec["name"] for spec in inputs if isinstance(spec, dict) and "name" in spec]
        if names:
            signature["input_columns"] = names
    except (ValueError, TypeError, AttributeError):
        pass
    return estimator, signature


def sklearn_model_row(run_id: str, name: str, files: dict[str, dict], artifacts) -> dict | None:
    """A run's model row (``logged_model``) for an MLflow model folder (``files``: its paths and their
    blobs' hashes) holding a scikit-learn estimator, kept pickled as ``ml.log_model`` keeps one:
    the run page shows it, and it registers, converts to ONNX and serves like ours.  None for a
    folder without an MLmodel or of another flavor."""
    import pickle

    if "MLmodel" not in files:
        return None
    estimator, signature = mlmodel_sklearn(artifacts.get_bytes(files["MLmodel"]["hash"]), files, artifacts)
    if estimator is None:
        return None
    return {
        "run_id": run_id,
        "name": name[:MAX_KEY_LENGTH],
        "flavor": "sklearn",
        "model_hash": artifacts.put_bytes(pickle.dumps(estimator)),
        "onnx_hash": None,
        "onnx_error": None,
        "signature": json.dumps(signature),
        "created_at": now_ms(),
    }


def dataset_version_row(described: dict) -> dict:
    """An MLflow dataset (name, digest, source, schema, profile) as a dataset version of ours."""
    identity = json.dumps([described.get("name"), described.get("digest"), described.get("source")])
    try:
        schema = json.loads(described.get("schema") or "{}")
        columns = {c.get("name", str(i)): c.get("type", "") for i, c in enumerate(schema.get("mlflow_colspec") or [])}
    except (ValueError, AttributeError, TypeError):
        columns = {}
    try:
        rows = json.loads(described.get("profile") or "{}").get("num_rows")
    except (ValueError, AttributeError):
        rows = None
    return {
        "hash": hashlib.sha256(identity.encode()).hexdigest(),
        "format": "mlflow",
        "columns": json.dumps(columns),
        "num_rows": rows if isinstance(rows, int) else None,
        "num_bytes": 0,
        "created_at": now_ms(),
    }


def dataset_inputs(datasets: list[dict]) -> list[dict]:
    """A run's input datasets in MLflow's form (those logged through MLflow keep what it sent)."""
    inputs = []
    for dataset in datasets:
        if dataset.get("direction") != "input":
            continue
        try:
            logged = json.loads(dataset.get("source") or "")
        except ValueError:
            logged = None
        if isinstance(logged, dict) and "mlflow" in logged:
            described, tags = logged["mlflow"], logged.get("tags") or {}
        else:
            described = {
                "name": dataset.get("name"),
                "digest": str(dataset.get("hash", ""))[:8],
                "source_type": "local",
                "source": json.dumps({"uri": dataset.get("source") or ""}),
            }
            tags = {}
        inputs.append(
            {
                "dataset": {k: v for k, v in described.items() if v is not None},
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            }
        )
    return inputs
