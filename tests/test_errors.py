"""One error vocabulary: each error carries its HTTP status, keeps its builtin base, and comes back
the same class from a server's ``{"error", "status"}`` answer."""

from __future__ import annotations

import json

import pytest

from mlops_lab.artifacts import ArtifactError
from mlops_lab.config import ConfigError
from mlops_lab.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    MlopsLabError,
    NotFoundError,
    UnavailableError,
    error_body,
    error_from_response,
    status_of,
)
from mlops_lab.features import FeatureError
from mlops_lab.monitoring import DriftError
from mlops_lab.registry import RegistryError
from mlops_lab.serving.manager import ServingError
from mlops_lab.serving.predict import PredictError
from mlops_lab.serving.protocol import ProtocolError
from mlops_lab.serving.runtime import ModelLoadError
from mlops_lab.store import FilterError, StoreError


@pytest.mark.parametrize(
    ("error", "status", "builtin"),
    [
        (InvalidInputError, 400, ValueError),
        (ForbiddenError, 403, PermissionError),
        (NotFoundError, 404, KeyError),
        (ConflictError, 409, RuntimeError),
        (UnavailableError, 503, RuntimeError),
        (FilterError, 400, ValueError),
        (RegistryError, 400, ValueError),
        (DriftError, 400, ValueError),
        (FeatureError, 400, ValueError),
        (ConfigError, 400, ValueError),
        (ServingError, 400, ValueError),
        (PredictError, 400, ValueError),
        (StoreError, 503, RuntimeError),
        (ArtifactError, 503, RuntimeError),
        (ModelLoadError, 503, RuntimeError),
    ],
)
def test_each_error_has_its_status_and_keeps_its_builtin_base(error, status, builtin):
    exc = error("what was wrong, with the value")
    assert isinstance(exc, MlopsLabError) and isinstance(exc, builtin)
    assert status_of(exc) == status
    assert str(exc) == "what was wrong, with the value"  # not KeyError's quoted repr


def test_a_protocol_error_carries_the_status_it_was_given():
    exc = ProtocolError(413, "request body too large")
    assert status_of(exc) == 413 and exc.message == "request body too large"


def test_builtin_errors_of_validation_map_like_ours_and_bugs_map_to_nothing():
    assert status_of(ValueError("bad")) == 400
    assert status_of(TypeError("bad type")) == 400
    assert status_of(PermissionError("no")) == 403
    assert status_of(LookupError("none")) == 404
    assert status_of(FileNotFoundError("gone")) == 404
    assert status_of(FileExistsError("there")) == 409
    assert status_of(ZeroDivisionError()) is None  # a bug: doors let it through, with its traceback
    assert status_of(AttributeError("x")) is None


@pytest.mark.parametrize("error", [InvalidInputError, ForbiddenError, NotFoundError, ConflictError, UnavailableError])
def test_an_answer_rebuilds_the_error_it_came_from(error):
    sent = error("no registered model named 'churn'")
    body = json.dumps(error_body(str(sent), sent.status))
    got = error_from_response(sent.status, body.encode())
    assert type(got) is error and str(got) == str(sent) and got.status == sent.status


def test_answers_that_are_not_ours_still_become_errors_a_person_can_read():
    plain = error_from_response(502, b"<html>Bad Gateway</html>")
    assert isinstance(plain, UnavailableError) and "Bad Gateway" in str(plain)
    teapot = error_from_response(418, "")
    assert isinstance(teapot, InvalidInputError) and teapot.status == 418 and str(teapot) == "HTTP 418"
    # the body's status wins over the transport's (a proxy may answer 200-range codes oddly)
    assert isinstance(error_from_response(500, '{"error": "gone", "status": 404}'), NotFoundError)
