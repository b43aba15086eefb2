"""The model registry: versions from runs' logged models, stages and aliases, approvals.

    version = ml.register("churn", run_id)                 # ONNX checked against the source model
    ml.promote("churn", version, "Staging", comment="passes offline eval")
    ml.request_approval("churn", version)                  # Production needs approvals by others
    ml.promote("churn", version, "Production")
    model = ml.load_model("churn@production")              # or "churn/3", "churn@champion"

Every change is an event with who, when, from, to and why (``history``). The rules live here, in
the service, so the lab's panel, the CLI and the API enforce the same ones.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from .tracking.capture import onnx_signature, sklearn_to_onnx
from .tracking.values import check_key, check_name

if TYPE_CHECKING:
    from .workspace import Workspace

STAGES = ("None", "Staging", "Production", "Archived")
TRANSITIONS = {
    "None": {"Staging", "Archived"},
    "Staging": {"Production", "Archived", "None"},
    "Production": {"Archived", "Staging"},
    "Archived": {"Staging"},
}
DEFAULT_REQUIRED_APPROVALS = 1
DEFAULT_TOLERANCE = 1e-4
MAX_COMMENT = 8000
_URI = re.compile(r"^(?P<name>[^@/]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_.\-]+))?$")


class RegistryError(InvalidInputError):
    """A registry request that breaks a rule; the message names the rule."""


@dataclass
class LoadedModel:
    """A registered version ready to predict with onnxruntime (CUDA first when present)."""

    name: str
    version: int
    signature: dict
    session: object

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def predict(self, rows) -> np.ndarray:
        inputs = self.session.get_inputs()
        values = np.asarray(rows.to_numpy() if hasattr(rows, "to_numpy") else rows, dtype=np.float32)
        outputs = self.session.run(None, {inputs[0].name: values})
        return outputs[0]


def onnx_providers(wanted: list[str] | None = None) -> list[str]:
    """``wanted`` (default: CUDA, then CPU) as far as this onnxruntime has them; CPU at worst."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in (wanted or ["CUDAExecutionProvider", "CPUExecutionProvider"]) if p in available] or [
        "CPUExecutionProvider"
    ]


def _onnx_session(onnx_bytes: bytes):
    import onnxruntime as ort

    return ort.InferenceSession(onnx_bytes, providers=onnx_providers())


def _outputs_to_compare(estimator, rows: np.ndarray) -> list[np.ndarray]:
    """What the source model says for ``rows``: labels or values, and probabilities when it has them."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:  # fitted on a frame: give it one, with the same column names
        import pandas as pd

        rows = pd.DataFrame(rows, columns=names)
    outputs = [np.asarray(estimator.predict(rows))]
    if hasattr(estimator, "predict_proba"):
        outputs.append(np.asarray(estimator.predict_proba(rows)))
    return outputs


def _comment(comment) -> str | None:
    """Why a change was made: text, or nothing."""
    if comment is None:
        return None
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise RegistryError(f"a comment must be text of at most {MAX_COMMENT:,} characters, got {str(comment)[:50]!r}")
    return comment


class Registry:
    """The registry of a workspace, acting as its user (``workspace.registry``)."""

    def __init__(self, workspace: "Workspace", default_required_approvals: int = DEFAULT_REQUIRED_APPROVALS):
        self.workspace = workspace
        self.models = workspace.store.models
        self.artifacts = workspace.artifacts
        self.user = workspace.user
        self.default_required_approvals = default_required_approvals

    # ---- versions ----------------------------------------------------------------------------

    def register(
        self,
        name: str,
        run_id: str,
        model: str = "model",
        *,
        sample_rows=None,
        tolerance: float = DEFAULT_TOLERANCE,
        allow_failed: bool = False,
        details: dict | None = None,
    ) -> int:
        """A new version of ``name`` from the model ``model`` logged in ``run_id``.

        A scikit-learn model without an ONNX form is converted now; then the ONNX model must
        predict what the source predicts on ``sample_rows`` (or 64 synthetic rows) within
        ``tolerance``, or nothing is registered and the error gives the largest difference.
        A run that FAILED or was KILLED stopped before it finished what it meant to do: its models
        are registered only with ``allow_failed=True``.  ``details``: MLflow's fields of the version
        (``source``, ``mlflow_model_id``, ``description``, ``tags``), kept as they are given.
        """
        extra = details or {}
        unknown = set(extra) - {"source", "mlflow_model_id", "description", "tags"}
        if unknown:
            raise RegistryError(f"a version's details are source, mlflow_model_id, description and tags, not {unknown}")
        if isinstance(name, str) and ("@" in name or "/" in name):
            raise RegistryError(f"model name {name!r} may not contain '@' or '/' (they address versions)")
        check_name(name, "model")
        self.workspace.flush()
        record = self.workspace.store.runs.get_run(run_id)
        if record.info.status in ("FAILED", "KILLED") and not allow_failed:
            raise ConflictError(
                f"run {record.info.name!r} ({run_id}) {record.info.status}: its model may not be the one it meant "
                "to make; pass allow_failed=True to register it anyway"
            )
        logged = next((m for m in record.models if m["name"] == model), None)
        if logged is None:
            names = ", ".join(m["name"] for m in record.models) or "none"
            raise NotFoundError(f"run {run_id} logged no model named {model!r} (it has: {names})")
        signature = json.loads(logged["signature"])
        onnx_hash, max_difference = logged["onnx_hash"], None
        if logged["flavor"] == "sklearn":
            estimator = pickle.loads(self.artifacts.get_bytes(logged["model_hash"]))
            if onnx_hash is None:
                onnx_bytes = sklearn_to_onnx(estimator, getattr(estimator, "n_features_in_", None))
                onnx_hash = self.artifacts.put_bytes(onnx_bytes)
                signature = {
                    **onnx_signature(onnx_bytes),
                    **{k: v for k, v in signature.items() if k == "input_columns"},
                }
            max_difference = self._verify(estimator, self.artifacts.get_bytes(onnx_hash), sample_rows, tolerance)
        elif onnx_hash is None:
            raise RegistryError(f"model {model!r} of run {run_id} has no ONNX form: {logged['onnx_error']}")
        elif logged["flavor"] == "pytorch":  # checked when exported: the module's class lives in its notebook
            max_difference = signature.get("verified_max_difference")
            if max_difference is None or not max_difference <= tolerance:
                raise RegistryError(
                    f"the ONNX export of {model!r} differs from the PyTorch module by up to {max_difference} "
                    f"(tolerance {tolerance}); nothing was registered"
                )
        datasets = [{"name": d["name"], "hash": d["hash"], "direction": d["direction"]} for d in record.datasets]
        return self.models.add_version(
            {
                "name": name,
                "run_id": run_id,
                "source_model": model,
                "flavor": logged["flavor"],
                "model_hash": logged["model_hash"],
                "onnx_hash": onnx_hash,
                "signature": json.dumps(signature),
                "metrics": json.dumps({k: (v if v == v else None) for k, v in record.metrics.items()}),
                "datasets": json.dumps(datasets),
                "max_difference": max_difference,
                "source": extra.get("source") or f"runs:/{run_id}/{model}",
                "mlflow_model_id": extra.get("mlflow_model_id"),
                "description": extra.get("description"),
                "tags": json.dumps(extra["tags"]) if extra.get("tags") else None,
            },
            self.user,
        )

    def _verify(self, estimator, onnx_bytes: bytes, sample_rows, tolerance: float) -> float:
        n_features = getattr(estimator, "n_features_in_", None)
        if sample_rows is None:
            if not n_features:
                raise RegistryError("the model does not say how many features it takes: pass sample_rows")
            sample_rows = np.random.default_rng(0).normal(size=(64, int(n_features)))
        rows = np.asarray(sample_rows.to_numpy() if hasattr(sample_rows, "to_numpy") else sample_rows, dtype=np.float32)
        session = _onnx_session(onnx_bytes)
        produced = session.run(None, {session.get_inputs()[0].name: rows})
        expected = _outputs_to_compare(estimator, rows)
        largest = 0.0
        for want, got in zip(expected, produced):
            got = np.asarray(got)
            if want.shape != got.shape:
                raise RegistryError(f"the ONNX model's output has shape {got.shape}, the source model's {want.shape}")
            if want.dtype.kind in "fc" or got.dtype.kind == "f":
                largest = max(largest, float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64)))))
            else:
                largest = max(largest, float(np.mean(want != got)))  # share of differing labels
        if largest > tolerance:
            raise RegistryError(
                f"the ONNX model disagrees with the source model: largest difference {largest:.6g} "
                f"on {len(rows)} sample rows, above the tolerance {tolerance:g}; nothing was registered"
            )
        return largest

    # ---- stages, aliases, approvals ----------------------------------------------------------

    def resolve(self, uri: str) -> tuple[str, int]:
        """``name/3``, ``name@alias``, ``name@production`` (or ``@staging``), ``name`` (latest)."""
        match = _URI.match(uri or "")
        if not match:
            raise RegistryError(f"model reference {uri!r} must look like name, name/3, name@alias or name@production")
        name, version, alias = match["name"], match["version"], match["alias"]
        if version is not None:
            return name, self.models.get_version(name, int(version)).version
        if alias is None:
            versions = self.models.list_versions(name)
            if not versions:
                raise NotFoundError(f"model {name!r} has no versions")
            return name, versions[-1].version
        stage = next((s for s in STAGES if s.lower() == alias.lower()), None)
        if stage is not None:
            in_stage = [v for v in self.models.list_versions(name) if v.stage == stage]
            if not in_stage:
                raise NotFoundError(f"model {name!r} has no version in {stage}")
            return name, in_stage[-1].version
        pointed = self.models.aliases(name).get(alias)
        if pointed is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        return name, pointed

    def source_run(self, uri: str) -> str | None:
        """The run a model reference's version was registered from (None if it no longer resolves)."""
        try:
            name, version = self.resolve(uri)
            return self.models.get_version(name, version).run_id
        except (RegistryError, NotFoundError):
            return None

    def required_approvals(self, name: str) -> int:
        policy = self.models.get_model(name).required_approvals
        return self.default_required_approvals if policy is None else policy

    def promote(
        self, name: str, version: int, stage: str, *, comment: str | None = None, archive_previous: bool = True
    ) -> None:
        """Move a version to a stage.  Production needs an approved request when the policy asks."""
        if stage not in STAGES:
            raise RegistryError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        current = self.models.get_version(name, version)
        if stage == current.stage:
            raise RegistryError(f"{name}/{version} is already in {stage}")
        if stage not in TRANSITIONS[current.stage]:
            allowed = ", ".join(sorted(TRANSITIONS[current.stage]))
            raise RegistryError(
                f"{name}/{version} cannot go from {current.stage} to {stage}; from {current.stage} "
                f"it can go to {allowed}"
            )
        approval_id = None
        if stage == "Production":
            needed = self.required_approvals(name)
            if needed:
                approved = [
                    r
                    for r in self.models.approvals_for(name, version)
                    if r.stage == "Production" and r.status == "APPROVED"
                ]
                if not approved:
                    raise ForbiddenError(
                        f"{name}/{version} needs {needed} approval(s) by someone other than the "
                        "requester before Production: ml.request_approval, then ml.approve"
                    )
                approval_id = approved[0].id
        expected = self.models.get_model(name).production_version
        self.models.set_stage(
            name, version, stage, self.user, _comment(comment), expected, archive_previous, approval_id
        )

    def set_alias(self, name: str, alias: str, version: int | None, *, comment: str | None = None) -> None:
        check_key(alias, "alias")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise RegistryError(f"an alias points at a version number (or None to remove it), got {version!r}")
        if alias.lower() in (s.lower() for s in STAGES) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", alias):
            raise RegistryError(f"alias {alias!r} must be letters, digits, '_', '.' or '-', and not a stage name")
        self.models.set_alias(name, alias, version, self.user, _comment(comment))

    def set_policy(self, name: str, required_approvals: int | None) -> None:
        if required_approvals is not None and (not isinstance(required_approvals, int) or required_approvals < 0):
            raise RegistryError(
                f"required_approvals must be a non-negative integer or None, got {required_approvals!r}"
            )
        current = self.required_approvals(name)
        lowered = (self.default_required_approvals if required_approvals is None else required_approvals) < current
        if lowered:
            own = [r for r in self.models.approvals_for(name) if r.requested_by == self.user and r.status == "PENDING"]
            if own:
                raise ForbiddenError(
                    f"{self.user!r} has an open approval request on {name!r} (version {own[0].version}) and cannot "
                    f"lower its approval policy from {current} to {required_approvals}: someone else may"
                )
        self.models.set_policy(name, required_approvals, self.user)  # recorded as a "policy" event

    def request_approval(
        self, name: str, version: int, *, stage: str = "Production", comment: str | None = None
    ) -> str:
        if stage not in STAGES:
            raise RegistryError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        return self.models.request_approval(name, version, stage, self.user, _comment(comment))

    def approve(self, request_id: str, *, comment: str | None = None) -> str:
        request, _ = self.models.approval(request_id)
        return self.models.vote(
            request_id, self.user, "approve", _comment(comment), self.required_approvals(request.name)
        )

    def reject(self, request_id: str, *, comment: str | None = None) -> str:
        request, _ = self.models.approval(request_id)
        return self.models.vote(
            request_id, self.user, "reject", _comment(comment), self.required_approvals(request.name)
        )

    # ---- reading -----------------------------------------------------------------------------

    def overview(self) -> list[dict]:
        """Every registered model with its versions' stages and its aliases: the Models panel's list."""
        result = []
        for model in self.models.list_models():
            versions = self.models.list_versions(model.name)
            result.append(
                {
                    **model.model_dump(),
                    "aliases": self.models.aliases(model.name),
                    "versions": [
                        {
                            "version": v.version,
                            "stage": v.stage,
                            "run_id": v.run_id,
                            "created_at": v.created_at,
                            "created_by": v.created_by,
                        }
                        for v in versions
                    ],
                }
            )
        return result

    def describe(self, name: str) -> dict:
        """One model in full: versions (with metrics and lineage), aliases, approvals, gates, history."""
        model = self.models.get_model(name)
        approvals = []
        for request in self.models.approvals_for(name):
            _, votes = self.models.approval(request.id)
            approvals.append({**request.model_dump(), "votes": [v.model_dump() for v in votes]})
        return {
            "model": {**model.model_dump(), "required_approvals_effective": self.required_approvals(name)},
            "versions": [
                {
                    **v.model_dump(),
                    "signature": json.loads(v.signature),
                    "metrics": json.loads(v.metrics),
                    "datasets": json.loads(v.datasets),
                }
                for v in self.models.list_versions(name)
            ],
            "aliases": self.models.aliases(name),
            "approvals": approvals,
            "gates": self.models.gate_results(name),
            "history": self.history(name),
        }

    def history(self, name: str) -> list[dict]:
        self.models.get_model(name)
        return self.workspace.store.events.events("model", name)

    def onnx(self, uri: str) -> tuple[str, int, bytes, dict]:
        """The name, version, ONNX bytes and signature behind a reference."""
        name, version = self.resolve(uri)
        row = self.models.get_version(name, version)
        if not row.onnx_hash:
            raise RegistryError(f"{name}/{version} has no ONNX form")
        return name, version, self.artifacts.get_bytes(row.onnx_hash), json.loads(row.signature or "{}")

    def load_model(self, uri: str) -> LoadedModel:
        name, version, onnx_bytes, signature = self.onnx(uri)
        return LoadedModel(name, version, signature, _onnx_session(onnx_bytes))


__all__ = ["ConflictError", "LoadedModel", "Registry", "RegistryError", "STAGES", "onnx_providers"]
