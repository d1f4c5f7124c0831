"""`ferroscore.Endpoint`: request bytes in, response bytes and a decision out, or one
exception carrying every problem with its JSON Pointer and code."""

from __future__ import annotations

import json

import orjson
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from ferroscore import (
    Endpoint,
    MalformedRequestError,
    Model,
    PayloadTooLargeError,
    RequestError,
    SchemaError,
    ValidationError,
)

DATA = load_breast_cancer()


@pytest.fixture(scope="module")
def endpoint(demo_model_bytes: bytes, demo_schema: str) -> Endpoint:
    return Endpoint("demo", 3, Model.load(demo_model_bytes), demo_schema, max_body_bytes=4096)


@pytest.fixture(scope="module")
def names(endpoint: Endpoint) -> list[str]:
    names = endpoint.model.feature_names
    assert names is not None
    return names


def _record(names: list[str], row: list[float]) -> dict[str, object]:
    return {"features": dict(zip(names, row, strict=True))}


def test_scores_equal_xgboost_and_decisions_carry_the_row(
    endpoint: Endpoint, names: list[str], demo_model_bytes: bytes
) -> None:
    booster = xgb.Booster(model_file=bytearray(demo_model_bytes))
    expected = booster.inplace_predict(DATA.data)
    for i in range(0, len(DATA.data), 7):
        row = [float(v) for v in DATA.data[i]]
        body = json.dumps(_record(names, row))
        # Robyn hands over str for UTF-8 bodies and bytes otherwise: both are accepted.
        for payload in (body, body.encode()):
            response, decision = endpoint.score(payload)
            answer = orjson.loads(response)
            assert answer["score"] == pytest.approx(float(expected[i]), abs=1e-6)
            assert (answer["model"], answer["version"]) == ("demo", 3)
            assert answer["request_id"] == decision.request_id
            [(index, features, scores, decided)] = decision.rows()
            assert (index, scores, decided) == (0, [answer["score"]], None)
            assert json.loads(features) == dict(zip(names, row, strict=True))


def test_every_problem_is_reported_with_pointer_and_code(
    endpoint: Endpoint, names: list[str]
) -> None:
    record = _record(names, [1.0] * 30)
    features = record["features"]
    assert isinstance(features, dict)
    features[names[0]] = -1
    features[names[1]] = "12"
    del features[names[2]]
    features["colour"] = "red"
    with pytest.raises(ValidationError) as info:
        endpoint.score(json.dumps(record))
    got = {(e["pointer"], e["code"]) for e in info.value.errors}
    assert got == {
        (f"/features/{names[0]}", "minimum"),
        (f"/features/{names[1]}", "type"),
        (f"/features/{names[2]}", "missing"),
        ("/features/colour", "unknown_feature"),
    }
    assert all(e["message"] for e in info.value.errors)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", MalformedRequestError),
        (b"{", MalformedRequestError),
        (b'{"features": {"mean_radius": NaN}}', MalformedRequestError),
        (b'{"features": {"mean_radius": 1,}}', MalformedRequestError),
        (b"\xff\xfe", MalformedRequestError),
        (b"[]", ValidationError),
        (b'{"features": []}', ValidationError),
        (b"{}", ValidationError),
        (b"{" + b" " * 5000 + b"}", PayloadTooLargeError),
    ],
)
def test_refusals_are_typed_value_errors(
    endpoint: Endpoint, body: bytes, error: type[RequestError]
) -> None:
    with pytest.raises(error) as info:
        endpoint.score(body)
    assert isinstance(info.value, ValueError)
    assert info.value.errors
    assert info.value.errors[0]["code"] in {"syntax", "type", "missing", "too_large"}


def test_wrong_body_type_is_a_type_error(endpoint: Endpoint) -> None:
    with pytest.raises(TypeError):
        endpoint.score(123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "object", "properties": {"a": {"type": "number"}}}', "column"),
        (
            '{"type": "object", "properties": {"a": {"type": "number", "format": "x",'
            ' "x-ferroscore-column": 0}}}',
            "format",
        ),
    ],
)
def test_invalid_schemas_are_refused(demo_model_bytes: bytes, schema: str, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        Endpoint("m", 1, Model.load(demo_model_bytes), schema)


def test_schema_must_fit_the_model(demo_model_bytes: bytes) -> None:
    model = Model.load(demo_model_bytes)
    wrong_name = (
        '{"type": "object", "properties": {"radius": {"type": "number", "x-ferroscore-column": 0}}}'
    )
    with pytest.raises(SchemaError, match="mean_radius") as e:
        Endpoint("m", 1, model, wrong_name)
    assert e.value.pointer == "/properties/radius/x-ferroscore-column"
    out_of_range = (
        '{"type": "object", "properties": {"x": {"type": "number", "x-ferroscore-column": 30}}}'
    )
    with pytest.raises(SchemaError, match="column 30"):
        Endpoint("m", 1, model, out_of_range)
    # Only column 0 bound: the model reads 29 more, which would always be missing.
    unbound = (
        '{"type": "object", "properties": {"mean_radius": {"type": "number",'
        ' "x-ferroscore-column": 0}}}'
    )
    with pytest.raises(SchemaError, match="mean_texture") as e:
        Endpoint("m", 1, model, unbound)
    assert (e.value.pointer, e.value.document) == ("/properties", "schema")


def test_text_without_a_utf8_form_is_malformed(endpoint: Endpoint) -> None:
    with pytest.raises(MalformedRequestError) as info:
        endpoint.score('{"features": {"\ud800": 1}}')
    assert info.value.errors[0]["code"] == "syntax"


def test_a_model_of_one_probability_takes_two_labels(
    demo_model_bytes: bytes, demo_schema: str, names: list[str]
) -> None:
    """The negative class first: `probabilities` are 1 - p and p, `label` the likelier."""
    labelled = Endpoint("demo", 1, Model.load(demo_model_bytes), demo_schema,
                        classes=["malignant", "benign"])  # fmt: skip
    assert labelled.classes == ["malignant", "benign"]
    rows = [{"features": dict(zip(names, map(float, DATA.data[i]), strict=True))}
            for i in (0, 19)]  # fmt: skip
    answer = orjson.loads(labelled.score(orjson.dumps({"rows": rows}))[0])
    for p, label, probabilities in zip(answer["scores"], answer["labels"],
                                       answer["probabilities"], strict=True):  # fmt: skip
        assert probabilities == {"malignant": pytest.approx(1 - p), "benign": p}
        assert label == ("benign" if p >= 0.5 else "malignant")
    assert set(answer["labels"]) == {"malignant", "benign"}
    for classes in (["one"], ["a", "b", "c"], ["a", "a"]):
        with pytest.raises(SchemaError) as e:
            Endpoint("demo", 1, Model.load(demo_model_bytes), demo_schema, classes=classes)
        assert e.value.document == "labels"
