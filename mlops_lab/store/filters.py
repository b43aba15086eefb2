"""MLflow's run filter grammar, compiled to SQLAlchemy expressions with bound values.

    metrics.acc > 0.9 and params.model = 'rf' and tags.team LIKE 'ds-%'
    attributes.status IN ('FINISHED', 'FAILED') or metrics.`val loss` <= 0.2

Keys may be quoted with backticks or double quotes.  ``AND`` binds tighter than ``OR`` and
parentheses group (MLflow itself only has ``AND``).  Values never become SQL text: every literal
is a bound parameter, so a filter cannot inject SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from ..errors import InvalidInputError
from .models import Experiment, LatestMetric, Param, Run, Tag

# Core columns, not ORM attributes: building a statement from them costs a fraction as much.
RUN, PARAM, METRIC, TAG = (model.__table__.c for model in (Run, Param, LatestMetric, Tag))


class FilterError(InvalidInputError):
    """A filter or order_by string that does not parse; the message says where and why."""


ENTITY_ALIASES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}

NUMERIC_ATTRIBUTES = {"start_time": RUN.start_time, "end_time": RUN.end_time}
STRING_ATTRIBUTES = {
    "status": RUN.status,
    "run_name": RUN.name,
    "name": RUN.name,
    "user": RUN.user,
    "run_id": RUN.id,
    "id": RUN.id,
    "notebook_path": RUN.notebook_path,
    "git_commit": RUN.git_commit,
    "parent_run_id": RUN.parent_run_id,
    "experiment": Experiment.__table__.c.name,  # searches join each run's experiment
}
ATTRIBUTES = NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES | {"duration": None, "experiment_id": RUN.experiment_id}

NUMERIC_OPS = {"=", "!=", "<", "<=", ">", ">="}
STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+(?![\w.]))
      | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<ident>[A-Za-z_][\w]*\.(?:`[^`]+`|"[^"]+"|[\w.\-/:]+)|[A-Za-z_]\w*)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str
    text: str
    pos: int


# Limits a filter must stay within: each is far beyond what a person writes, and keeps one request
# from holding the server (the tokenizer is linear, but a statement of thousands of terms is not).
MAX_FILTER_LENGTH = 20_000
MAX_CONDITIONS = 250
MAX_DEPTH = 32
MAX_IN_VALUES = 1_000
MAX_ORDER_BY = 10


def tokenize(text: str) -> list[Token]:
    """The filter's tokens; linear in its length (possessive quantifiers never backtrack)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"the filter is {len(text):,} characters; at most {MAX_FILTER_LENGTH:,} are accepted")
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos} in filter {text!r}")
        kind = match.lastgroup
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


@dataclass
class Field:
    entity: str  # metrics | params | tags | attributes
    key: str


def parse_field(text: str, *, where: str) -> Field:
    entity, dot, key = text.partition(".")
    if not dot:
        raise FilterError(
            f"{text!r} in {where} needs an entity prefix: metrics.{text}, params.{text}, tags.{text} or attributes.{text}"
        )
    entity = ENTITY_ALIASES.get(entity.lower())
    if entity is None:
        raise FilterError(
            f"unknown entity {text.partition('.')[0]!r} in {where}: use metrics., params., tags. or attributes."
        )
    if key[:1] in '`"' and key[-1:] == key[:1] and len(key) >= 2:
        key = key[1:-1]
    if not key:
        raise FilterError(f"empty key in {text!r} in {where}")
    if entity == "attributes" and key not in ATTRIBUTES:
        raise FilterError(f"unknown attribute {key!r} in {where}; known: {', '.join(sorted(ATTRIBUTES))}")
    return Field(entity, key)


def _unquote(token: Token) -> str:
    body = token.text[1:-1]
    if token.text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        comparisons = sum(
            token.kind == "op" or (token.kind == "ident" and token.text.upper() in ("LIKE", "ILIKE", "IN"))
            for token in self.tokens
        )
        if comparisons > MAX_CONDITIONS:  # refused before building any of them
            raise FilterError(f"the filter has more than {MAX_CONDITIONS} comparisons; use IN (…) for lists of values")
        self.i = 0
        self.depth = 0
        self.conditions = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, expected: str) -> Token:
        token = self.peek()
        if token is None:
            raise FilterError(f"filter {self.text!r} ends early: expected {expected}")
        self.i += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "ident" and token.text.upper() in words:
            self.i += 1
            return True
        return False

    def parse(self):
        expr = self.or_expr()
        token = self.peek()
        if token is not None:
            raise FilterError(f"unexpected {token.text!r} at position {token.pos} in filter {self.text!r}")
        return expr

    def or_expr(self):
        parts = [self.and_expr()]
        while self.keyword("OR"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def and_expr(self):
        parts = [self.factor()]
        while self.keyword("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def factor(self):
        token = self.peek()
        if token is not None and token.text == "(":
            self.i += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"the filter nests parentheses more than {MAX_DEPTH} deep")
            expr = self.or_expr()
            self.depth -= 1
            closing = self.next("')'")
            if closing.text != ")":
                raise FilterError(f"expected ')' at position {closing.pos} in filter {self.text!r}")
            return expr
        return self.comparison()

    def comparison(self):
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(f"the filter has more than {MAX_CONDITIONS} comparisons; use IN (…) for lists of values")
        token = self.next("a field such as metrics.acc")
        if token.kind != "ident" or "." not in token.text:
            raise FilterError(
                f"expected a field such as metrics.acc or params.model at position {token.pos} "
                f"in filter {self.text!r}, got {token.text!r}"
            )
        field = parse_field(token.text, where=f"filter {self.text!r}")
        op_token = self.next("a comparison operator")
        if op_token.kind == "op":
            op = "!=" if op_token.text == "<>" else op_token.text
        elif op_token.kind == "ident" and op_token.text.upper() in ("LIKE", "ILIKE", "IN"):
            op = op_token.text.upper()
        elif op_token.kind == "ident" and op_token.text.upper() == "NOT" and self.keyword("IN"):
            op = "NOT IN"
        else:
            raise FilterError(f"expected a comparison operator after {token.text!r}, got {op_token.text!r}")
        value = self.values() if op in ("IN", "NOT IN") else self.value()
        return compile_comparison(field, op, value, self.text)

    def value(self):
        token = self.next("a value")
        if token.kind == "number":
            return float(token.text)
        if token.kind == "string":
            return _unquote(token)
        raise FilterError(
            f"expected a number or a quoted string at position {token.pos} in filter {self.text!r}, got {token.text!r}"
        )

    def values(self) -> list:
        if self.next("'('").text != "(":
            raise FilterError(f"IN needs a parenthesised list of values in filter {self.text!r}")
        items = [self.value()]
        while (token := self.next("',' or ')'")).text == ",":
            items.append(self.value())
            if len(items) > MAX_IN_VALUES:
                raise FilterError(f"IN takes at most {MAX_IN_VALUES:,} values")
        if token.text != ")":
            raise FilterError(f"expected ',' or ')' at position {token.pos} in filter {self.text!r}")
        return items


def _string_condition(column, op: str, value):
    if op in ("IN", "NOT IN"):
        values = [str(v) for v in value]
        return column.in_(values) if op == "IN" else column.not_in(values)
    return {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        "LIKE": lambda: column.like(value),
        "ILIKE": lambda: func.lower(column).like(value.lower()),
    }[op]()


def _numeric_condition(column, op: str, value: float):
    return {
        "=": column == value,
        "!=": column != value,
        "<": column < value,
        "<=": column <= value,
        ">": column > value,
        ">=": column >= value,
    }[op]


def _runs_where(table, key: str, condition):
    """Runs having ``key`` with a value meeting ``condition``.  An uncorrelated IN lets the
    database walk the (key, value) index once instead of probing it for every run."""
    return RUN.id.in_(select(table.run_id).where(table.key == key, condition))


def compile_comparison(field: Field, op: str, value, text: str):
    where = f"filter {text!r}"
    is_number = isinstance(value, float)
    if field.entity == "metrics":
        if op not in NUMERIC_OPS or not is_number:
            raise FilterError(f"metrics.{field.key} compares with =, !=, <, <=, >, >= and a number in {where}")
        return _runs_where(METRIC, field.key, _numeric_condition(METRIC.value, op, value))
    if field.entity == "params":
        if is_number:
            if op not in NUMERIC_OPS:
                raise FilterError(f"{op} needs a quoted string in {where}")
            condition = _numeric_condition(PARAM.value_num, op, value)
        else:
            if op not in STRING_OPS:
                raise FilterError(
                    f"params.{field.key} compared with a string takes {', '.join(sorted(STRING_OPS))} in {where}"
                )
            condition = _string_condition(PARAM.value, op, value)
        return _runs_where(PARAM, field.key, condition)
    if field.entity == "tags":
        if op not in STRING_OPS or is_number:
            raise FilterError(
                f"tags.{field.key} compares with a quoted string using {', '.join(sorted(STRING_OPS))} in {where}"
            )
        return _runs_where(TAG, field.key, _string_condition(TAG.value, op, value))
    column = attribute_column(field.key)
    if field.key in STRING_ATTRIBUTES:
        if op not in STRING_OPS or is_number:
            raise FilterError(f"attributes.{field.key} compares with a quoted string in {where}")
        return _string_condition(column, op, value)
    if op not in NUMERIC_OPS or not is_number:
        raise FilterError(f"attributes.{field.key} compares with =, !=, <, <=, >, >= and a number in {where}")
    return _numeric_condition(column, op, value)


def attribute_column(key: str):
    if key == "duration":
        return RUN.end_time - RUN.start_time
    return ATTRIBUTES[key]


def compile_filter(text: str | None):
    """The SQL condition on ``Run`` for a filter string; None for an empty one."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterError(f"filter must be a string, got {type(text).__name__}")
    if not text.strip():
        return None
    return _Parser(text).parse()


_ORDER = re.compile(r"^\s*(?P<field>.+?)(?:\s+(?P<dir>ASC|DESC))?\s*$", re.IGNORECASE)


def parse_order_by(items: list[str] | str | None) -> list[tuple[Field, bool]]:
    """``["metrics.acc DESC", "params.lr"]`` → [(field, descending)]."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    if len(items) > MAX_ORDER_BY:
        raise FilterError(f"order_by takes at most {MAX_ORDER_BY} keys, got {len(items)}")
    result = []
    for item in items:
        if not isinstance(item, str) or not item.strip() or len(item) > 1_000:
            raise FilterError(
                f"order_by items must be non-empty strings like 'metrics.acc DESC', got {str(item)[:100]!r}"
            )
        match = _ORDER.match(item)
        field = parse_field(match["field"].strip(), where=f"order_by {item!r}")
        result.append((field, (match["dir"] or "ASC").upper() == "DESC"))
    return result
