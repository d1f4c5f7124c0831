"""Hypothesis against the Rust parser through the Python API: numbers come out exactly as
Python's float() reads the same literal, and no input makes anything but a RequestError."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferroscore import Endpoint, MalformedRequestError, Model, RequestError, ValidationError


@pytest.fixture(scope="module")
def endpoint(demo_model_bytes: bytes, demo_schema: str) -> Endpoint:
    return Endpoint("demo", 1, Model.load(demo_model_bytes), demo_schema)


@pytest.fixture(scope="module")
def names(endpoint: Endpoint) -> list[str]:
    names = endpoint.model.feature_names
    assert names is not None
    return names


LITERALS = st.one_of(
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"(0|[1-9][0-9]{0,22})(\.[0-9]{1,22})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
)


def _exact_in_float32(i: int) -> bool:
    # Beyond 2^127 no integer is (float32 tops out near 3.4e38); the core refuses those too.
    return i < 2**127 and int(np.float32(i)) == i


@settings(max_examples=400, deadline=None)
@given(literal=LITERALS)
def test_numbers_read_as_python_float_reads_them(
    endpoint: Endpoint, names: list[str], literal: str
) -> None:
    rest = ", ".join(f'"{n}": 1' for n in names[1:])
    body = f'{{"features": {{"{names[0]}": {literal}, {rest}}}}}'
    expected = float(literal)
    is_int = literal.isdigit()
    if expected == float("inf"):
        with pytest.raises(MalformedRequestError):
            endpoint.score(body)
    elif is_int and not _exact_in_float32(int(literal)):
        # The model reads float32: an integer it cannot hold exactly is refused, not rounded.
        with pytest.raises(ValidationError) as info:
            endpoint.score(body)
        assert info.value.errors[0]["code"] == "integer_range"
    else:
        _, decision = endpoint.score(body)
        [(_, features, _, _)] = decision.rows()
        assert json.loads(features)[names[0]] == expected


def _refusal(call: Callable[[], object]) -> list[dict[str, str]] | None:
    """The errors of a refused request, or None when it was scored."""
    try:
        call()
    except RequestError as e:
        return e.errors
    return None


@settings(max_examples=500, deadline=None)
@given(body=st.one_of(st.binary(max_size=2048), st.text(max_size=512)))
def test_any_input_is_scored_or_refused_as_a_request_error(endpoint: Endpoint, body: bytes) -> None:
    for call in (
        lambda: endpoint.score(body),
        lambda: endpoint.score(body, ndjson=True, partial=True),
    ):
        errors = _refusal(call)
        assert errors is None or errors
        assert all({"pointer", "code", "message"} == set(x) for x in errors or [])
