"""MLflow's search strings: run filters and orders in our grammar (MLflow's system tags are the
run's columns), and MLflow's filters for experiments, registered models, versions and logged models."""

from __future__ import annotations

import re

from .wire import MlflowApiError

# MLflow's system tags that are a run's columns here: kept there, never twice.
SYSTEM_TAGS = {
    "mlflow.runName": "run_name",
    "mlflow.user": "user",
    "mlflow.parentRunId": "parent_run_id",
    "mlflow.source.name": "notebook_path",
}
COLUMN_OF_TAG = {"mlflow.runName": "name", "mlflow.parentRunId": "parent_run_id", "mlflow.source.name": "notebook_path"}


def mlflow_order(item) -> str:
    """An MLflow ``order_by`` item in our grammar: a bare name is an attribute."""
    if not isinstance(item, str) or not item.strip():
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause {item!r}")
    text = item.strip()
    field = text.split()[0]
    if "." not in field and not field.startswith("`"):
        text = f"attributes.{text}"
    return mlflow_filter(text)


_SYSTEM_TAG_FIELD = re.compile(
    r"""\btags?\.(?:`(mlflow\.(?:runName|user|parentRunId|source\.name))`|"(mlflow\.(?:runName|user|parentRunId|source\.name))"
        |(mlflow\.(?:runName|user|parentRunId|source\.name))(?![\w.]))""",
    re.VERBOSE,
)


def mlflow_filter(text: str | None) -> str | None:
    """MLflow's run filter in our grammar: the same, but for MLflow's system tags, which are the
    run's columns here (``tags.mlflow.runName`` is ``attributes.run_name``), so they find
    ``%%track`` runs too.  (A quoted value that spells such a field is left alone.)"""
    if not text:
        return text
    parts = re.split(r"('(?:[^']|'')*')", text)  # keep quoted values as they are
    for i in range(0, len(parts), 2):
        parts[i] = _SYSTEM_TAG_FIELD.sub(
            lambda m: f"attributes.{SYSTEM_TAGS[m.group(1) or m.group(2) or m.group(3)]}", parts[i]
        )
    return "".join(parts)


_CLAUSE = re.compile(
    r"""\s*(?P<field>(?:attributes?\.|attr\.)?\w+|tags?\.(?:`[^`]+`|"[^"]+"|[\w.\-]+))
        \s*(?P<op>=|!=|<=|>=|<|>|(?:NOT\s+)?I?LIKE)\s*
        (?P<value>'(?:[^']|'')*'|"[^"]*"|-?\d+)\s*""",
    re.VERBOSE | re.IGNORECASE,
)


def entity_filter(text, fields: dict):
    """MLflow's filter for experiments, registered models and versions — ``name LIKE 'x%' AND
    tags.team = 'a'`` — as a test on the entity's JSON; ``fields`` names what each field reads."""
    if not text:
        return lambda entity: True
    if not isinstance(text, str) or len(text) > 10_000:
        raise MlflowApiError("INVALID_PARAMETER_VALUE", "'filter' must be a string of at most 10,000 characters")
    tests = []
    for clause in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(clause)
        field = match and match["field"]
        if field and not field.lower().startswith("tag"):
            field = field.rsplit(".", 1)[-1].lower()
            if field not in fields:
                match = None
        if match is None:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid filter clause {clause!r}")
        raw = match["value"]
        value = int(raw) if re.fullmatch(r"-?\d+", raw) else raw[1:-1].replace("''", "'")
        tests.append((field, " ".join(match["op"].upper().split()), value))

    def read(entity: dict, field: str):
        if field.lower().startswith("tag"):
            key = field.split(".", 1)[1].strip('`"')
            return next((t["value"] for t in entity["tags"] if t["key"] == key), None)
        return fields[field](entity)

    def matches(entity: dict) -> bool:
        for field, op, value in tests:
            found = read(entity, field)
            if found is None:  # an absent tag differs from every value (MLflow's client asks for
                if op in ("!=", "NOT LIKE", "NOT ILIKE"):  # `tag.mlflow.prompt.is_prompt != 'true'`)
                    continue
                return False
            if "LIKE" in op:
                pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(value))
                flags = re.IGNORECASE if "ILIKE" in op else 0
                hit = re.fullmatch(pattern, str(found), flags | re.DOTALL) is not None
                if hit == op.startswith("NOT"):
                    return False
            elif not _compare(found, op, value):
                return False
        return True

    return matches


def experiment_filter(text):
    fields = {"name": lambda e: e["name"], "creation_time": lambda e: e["creation_time"],
              "last_update_time": lambda e: e["last_update_time"]}  # fmt: skip
    return entity_filter(text, fields)


def _compare(found, op: str, value) -> bool:
    if isinstance(value, int) and not isinstance(found, int):
        return False
    return {
        "=": found == value,
        "!=": found != value,
        "<": found < value,
        "<=": found <= value,
        ">": found > value,
        ">=": found >= value,
    }[op]


def experiment_order(items: list) -> list[tuple]:
    keys = []
    for item in items:
        if not isinstance(item, str):
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause {item!r}")
        parts = item.split()
        field = parts[0].rsplit(".", 1)[-1].lower() if parts else ""
        direction = parts[1].upper() if len(parts) > 1 else "ASC"
        if field not in ("name", "experiment_id", "creation_time", "last_update_time") or direction not in (
            "ASC",
            "DESC",
        ):
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause {item!r}")
        if field == "experiment_id":
            keys.append((lambda e: int(e["experiment_id"]), direction == "DESC"))
        else:
            keys.append((lambda e, f=field: e[f], direction == "DESC"))
    return keys


def logged_model_filter(text):
    """MLflow's logged-model filter, as far as its client asks: ``name``, ``source_run_id``,
    ``status``, ``model_type`` compared with ``=`` or ``!=``, joined by AND."""
    if not text:
        return lambda model: True
    if not isinstance(text, str) or len(text) > 10_000:
        raise MlflowApiError("INVALID_PARAMETER_VALUE", "'filter' must be a string of at most 10,000 characters")
    columns = {"name": "name", "source_run_id": "run_id", "status": "status", "model_type": "model_type"}
    tests = []
    for clause in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        match = re.fullmatch(r"\s*(?:attributes?\.)?(\w+)\s*(=|!=)\s*(?:'((?:[^']|'')*)'|\"([^\"]*)\")\s*", clause)
        if match is None or match[1] not in columns:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid logged model filter clause {clause!r}")
        value = match[3].replace("''", "'") if match[3] is not None else match[4]
        tests.append((columns[match[1]], match[2] == "=", value))
    return lambda model: all((model[column] == value) == equal for column, equal, value in tests)
