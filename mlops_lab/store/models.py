"""SQLModel tables of the run store (see docs/architecture.md, "Data model").

Times are integer milliseconds since the epoch, as in MLflow, so both engines compare them the same
way.  A metric value of NULL means NaN (SQLite cannot store NaN); ±inf are stored as they are.
Every state change of a run is also written to ``event`` (append-only).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, Text
from sqlmodel import Field, SQLModel

MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 8000
MAX_TAG_LENGTH = 8000
# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class Experiment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=MAX_KEY_LENGTH, unique=True, index=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_by: str = Field(max_length=250)
    description: str | None = Field(default=None, sa_column=Column(Text))
    # Deleted experiments are kept with their runs until restored (MLflow's lifecycle_stage).
    deleted_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    tags: str | None = Field(default=None, sa_column=Column(Text))  # JSON {key: value}; None: none


class Environment(SQLModel, table=True):
    """Python, packages and hardware; one row per distinct snapshot, shared by many runs."""

    hash: str = Field(primary_key=True, max_length=64)
    python: str = Field(max_length=250)
    platform: str = Field(max_length=250)
    packages: str = Field(sa_column=Column(Text, nullable=False))  # JSON {name: version}
    hardware: str = Field(sa_column=Column(Text, nullable=False))  # JSON


class Run(SQLModel, table=True):
    __table_args__ = (
        Index("ix_run_experiment_start", "experiment_id", "start_time"),
        Index("ix_run_status", "status"),
    )

    id: str = Field(primary_key=True, max_length=32)
    experiment_id: int = Field(foreign_key="experiment.id")
    name: str = Field(max_length=MAX_KEY_LENGTH)
    status: str = Field(max_length=16)  # RUNNING FINISHED FAILED KILLED
    user: str = Field(max_length=250)
    start_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    end_time: int | None = Field(default=None, sa_column=Column(BigInteger))
    parent_run_id: str | None = Field(default=None, max_length=32, index=True)
    notebook_path: str | None = Field(default=None, sa_column=Column(Text))
    source: str | None = Field(default=None, sa_column=Column(Text))  # the cell's code
    source_hash: str | None = Field(default=None, max_length=64)
    git_commit: str | None = Field(default=None, max_length=64)
    git_dirty: bool | None = None
    git_diff_hash: str | None = Field(default=None, max_length=64)  # blob of the uncommitted diff
    environment_hash: str | None = Field(default=None, max_length=64)
    host: str = Field(max_length=250)
    pid: int
    heartbeat_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))
    # Deleted runs are kept (MLflow's lifecycle_stage "deleted") until restored; searches skip them.
    deleted_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class Param(SQLModel, table=True):
    __table_args__ = (Index("ix_param_key_value", "key", "value"),)

    run_id: str = Field(primary_key=True, foreign_key="run.id", max_length=32)
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    value: str = Field(sa_column=Column(Text, nullable=False))
    # The value as a number when it reads as one, so `params.lr < 0.1` compares numbers.
    value_num: float | None = Field(default=None, sa_column=Column(Float))


class Metric(SQLModel, table=True):
    """Every point of every metric."""

    __table_args__ = (Index("ix_metric_run_key_step", "run_id", "key", "step"),)

    id: int | None = Field(default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True))
    run_id: str = Field(foreign_key="run.id", max_length=32)
    key: str = Field(max_length=MAX_KEY_LENGTH)
    value: float | None = Field(default=None, sa_column=Column(Float))
    step: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))


class LatestMetric(SQLModel, table=True):
    """The point with the highest (step, timestamp) of each metric: what filters and sorts read."""

    __tablename__ = "latest_metric"
    __table_args__ = (Index("ix_latest_metric_key_value", "key", "value"),)

    run_id: str = Field(primary_key=True, foreign_key="run.id", max_length=32)
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    value: float | None = Field(default=None, sa_column=Column(Float))
    step: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    min_value: float | None = Field(default=None, sa_column=Column(Float))
    max_value: float | None = Field(default=None, sa_column=Column(Float))
    count: int = Field(sa_column=Column(BigInteger, nullable=False))


class Tag(SQLModel, table=True):
    __table_args__ = (Index("ix_tag_key_value", "key", "value"),)

    run_id: str = Field(primary_key=True, foreign_key="run.id", max_length=32)
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    value: str = Field(sa_column=Column(Text, nullable=False))


class Artifact(SQLModel, table=True):
    run_id: str = Field(primary_key=True, foreign_key="run.id", max_length=32)
    path: str = Field(primary_key=True, max_length=1000)
    hash: str = Field(max_length=64)  # sha256 of the file, or of the folder's manifest
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(max_length=16)  # file | dir | figure (a PNG or plotly JSON file)


class LoggedModel(SQLModel, table=True):
    __tablename__ = "logged_model"

    run_id: str = Field(primary_key=True, foreign_key="run.id", max_length=32)
    name: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    flavor: str = Field(max_length=32)  # sklearn | onnx
    model_hash: str = Field(max_length=64)  # the model as logged (pickle or ONNX bytes)
    onnx_hash: str | None = Field(default=None, max_length=64)
    onnx_error: str | None = Field(default=None, sa_column=Column(Text))
    signature: str = Field(sa_column=Column(Text, nullable=False))  # JSON {inputs, outputs}
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class DatasetVersion(SQLModel, table=True):
    """A dataset's content, identified by its hash; stored once however many runs use it."""

    __tablename__ = "dataset_version"

    hash: str = Field(primary_key=True, max_length=64)
    format: str = Field(max_length=32)  # parquet | csv | json | file | frame
    columns: str = Field(sa_column=Column(Text, nullable=False))  # JSON {column: dtype}
    num_rows: int | None = Field(default=None, sa_column=Column(BigInteger))
    num_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    blob_hash: str | None = Field(default=None, max_length=64)  # bytes in the artifact store
    preview: str | None = Field(default=None, sa_column=Column(Text))  # JSON: the first rows
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class RunDataset(SQLModel, table=True):
    __tablename__ = "run_dataset"

    run_id: str = Field(primary_key=True, foreign_key="run.id", max_length=32)
    dataset_hash: str = Field(primary_key=True, foreign_key="dataset_version.hash", max_length=64)
    direction: str = Field(primary_key=True, max_length=8)  # input | output
    name: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    source: str | None = Field(default=None, sa_column=Column(Text))


class Event(SQLModel, table=True):
    """Append-only history: who changed what, when, from what to what."""

    __table_args__ = (Index("ix_event_entity", "entity_type", "entity_id"),)

    id: int | None = Field(default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True))
    entity_type: str = Field(max_length=32)
    entity_id: str = Field(max_length=250)
    kind: str = Field(max_length=64)
    user: str = Field(max_length=250)
    time: int = Field(sa_column=Column(BigInteger, nullable=False))
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON


class DriftReportRecord(SQLModel, table=True):
    """A stored drift report; the report itself is a JSON blob in the artifact store."""

    __tablename__ = "drift_report"
    __table_args__ = (Index("ix_drift_report_created", "created_at"),)

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=MAX_KEY_LENGTH)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    user: str = Field(max_length=250)
    reference: str = Field(sa_column=Column(Text, nullable=False))  # what was compared: hash, path or profile
    current: str = Field(sa_column=Column(Text, nullable=False))
    share_drifted: float
    dataset_drift: bool
    drifted_columns: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    blob_hash: str = Field(max_length=64)
    model_name: str | None = Field(default=None, max_length=MAX_KEY_LENGTH)
    model_version: str | None = Field(default=None, max_length=64)
    deployment: str | None = Field(default=None, max_length=MAX_KEY_LENGTH)
    run_id: str | None = Field(default=None, max_length=32)


class RegisteredModel(SQLModel, table=True):
    __tablename__ = "registered_model"

    name: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_by: str = Field(max_length=250)
    description: str | None = Field(default=None, sa_column=Column(Text))
    # The version in Production: promotions compare-and-set it, so of two at once exactly one wins.
    production_version: int | None = None
    required_approvals: int | None = None  # None: the registry's default policy
    tags: str | None = Field(default=None, sa_column=Column(Text))  # JSON {key: value}; None: none


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_version"

    name: str = Field(primary_key=True, foreign_key="registered_model.name", max_length=MAX_KEY_LENGTH)
    version: int = Field(primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=32)
    source_model: str = Field(max_length=MAX_KEY_LENGTH)  # the logged model's name in the run
    flavor: str = Field(max_length=32)
    model_hash: str = Field(max_length=64)
    onnx_hash: str = Field(max_length=64)
    signature: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    metrics: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the run's metrics when registered
    datasets: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the run's dataset versions
    max_difference: float | None = None  # ONNX against the source model on sample rows
    stage: str = Field(default="None", max_length=16)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_by: str = Field(max_length=250)
    # MLflow's registry fields: where the version came from (models:/<id> or runs:/<run>/<path>)
    source: str | None = Field(default=None, sa_column=Column(Text))
    mlflow_model_id: str | None = Field(default=None, max_length=40)
    description: str | None = Field(default=None, sa_column=Column(Text))
    tags: str | None = Field(default=None, sa_column=Column(Text))  # JSON {key: value}; None: none


class ModelAlias(SQLModel, table=True):
    __tablename__ = "model_alias"

    name: str = Field(primary_key=True, foreign_key="registered_model.name", max_length=MAX_KEY_LENGTH)
    alias: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    version: int


class ApprovalRequest(SQLModel, table=True):
    __tablename__ = "approval_request"
    __table_args__ = (Index("ix_approval_model", "name", "version"),)

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(foreign_key="registered_model.name", max_length=MAX_KEY_LENGTH)
    version: int
    stage: str = Field(max_length=16)
    requested_by: str = Field(max_length=250)
    status: str = Field(max_length=16)  # PENDING APPROVED REJECTED USED
    comment: str | None = Field(default=None, sa_column=Column(Text))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class ApprovalVote(SQLModel, table=True):
    __tablename__ = "approval_vote"

    request_id: str = Field(primary_key=True, foreign_key="approval_request.id", max_length=32)
    user: str = Field(primary_key=True, max_length=250)
    decision: str = Field(max_length=16)  # approve | reject
    comment: str | None = Field(default=None, sa_column=Column(Text))
    time: int = Field(sa_column=Column(BigInteger, nullable=False))


class GateResultRecord(SQLModel, table=True):
    """A gate's verdict on a model version (data validation or evaluation), kept with its details."""

    __tablename__ = "gate_result"
    __table_args__ = (Index("ix_gate_result_version", "name", "version"),)

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(foreign_key="registered_model.name", max_length=MAX_KEY_LENGTH)
    version: int
    gate: str = Field(max_length=32)  # data | evaluation
    passed: bool
    details: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the checks
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    user: str = Field(max_length=250)


class FileState(SQLModel, table=True):
    """What a file on a host hashed to, by inode, modification time and size: an unchanged large
    file is not read again (as DVC's state database does)."""

    __tablename__ = "file_state"

    host: str = Field(primary_key=True, max_length=250)
    path: str = Field(primary_key=True, max_length=4000)
    inode: int = Field(sa_column=Column(BigInteger, nullable=False))
    mtime_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)


class FeatureDefinition(SQLModel, table=True):
    """Entities, feature views and feature services, registered by the feature store."""

    __tablename__ = "feature_definition"

    kind: str = Field(primary_key=True, max_length=16)  # entity | view | service | materialized
    name: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    spec: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_by: str = Field(max_length=250)


# ---- the team server: who may do what --------------------------------------------------------


class TeamUser(SQLModel, table=True):
    """A person known to the team server (from one of its tokens or from JupyterHub)."""

    __tablename__ = "team_user"

    name: str = Field(primary_key=True, max_length=250)
    is_admin: bool = Field(default=False)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class ApiToken(SQLModel, table=True):
    """A team-server token: only its sha256 is kept, so the table gives no one a way in."""

    __tablename__ = "api_token"

    id: str = Field(primary_key=True, max_length=32)
    hash: str = Field(max_length=64, unique=True, index=True)
    user: str = Field(max_length=250, index=True)
    note: str = Field(default="", max_length=250)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    revoked_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Permission(SQLModel, table=True):
    """READ, EDIT or MANAGE on one experiment or registered model for one user or group ("group:x")."""

    kind: str = Field(primary_key=True, max_length=16)  # experiment | model
    name: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    grantee: str = Field(primary_key=True, max_length=250)
    level: str = Field(max_length=8)


class AppliedBatch(SQLModel, table=True):
    """Write batches already applied, by the id their client gave them: a batch sent again after a
    lost answer is not applied twice."""

    __tablename__ = "applied_batch"

    id: str = Field(primary_key=True, max_length=64)
    applied_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class Deployment(SQLModel, table=True):
    """A deployment's desired state, shared by the team: which model it serves with which rollout,
    whose it is and on which host its lab runs it.  That lab starts, stops and changes its process
    to match (and starts it again after the lab restarts); every lab lists every deployment."""

    name: str = Field(primary_key=True, max_length=100)
    model: str = Field(max_length=500)
    options: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: batching, canary, shadow
    owner: str = Field(max_length=250)
    host: str = Field(max_length=250)
    port: int
    state: str = Field(max_length=16)  # running | stopped: what is wanted, not what was last seen
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_by: str = Field(max_length=250)


# ---- MLflow 3's logged models, as MLflow's client logs them ---------------------------------------


class MlflowLoggedModel(SQLModel, table=True):
    """A model MLflow's client logged (``mlflow.<flavor>.log_model``), with its own files (below).
    A scikit-learn one logged in a run is also one of that run's models (``logged_model``)."""

    __tablename__ = "mlflow_logged_model"
    __table_args__ = (Index("ix_mlflow_logged_model_experiment", "experiment_id", "name"),)

    id: str = Field(primary_key=True, max_length=40)  # m-<32 hex>, as MLflow names them
    experiment_id: int = Field(foreign_key="experiment.id")
    run_id: str | None = Field(default=None, max_length=32, index=True)
    name: str = Field(max_length=MAX_KEY_LENGTH)
    status: str = Field(max_length=32)  # LOGGED_MODEL_PENDING | _READY | _UPLOAD_FAILED
    model_type: str | None = Field(default=None, max_length=MAX_KEY_LENGTH)
    params: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    tags: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_by: str = Field(max_length=250)
    deleted_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class MlflowLoggedModelFile(SQLModel, table=True):
    __tablename__ = "mlflow_logged_model_file"

    model_id: str = Field(primary_key=True, foreign_key="mlflow_logged_model.id", max_length=40)
    path: str = Field(primary_key=True, max_length=1000)
    hash: str = Field(max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
