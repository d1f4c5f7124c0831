"""Decisions from thresholds and reason codes from exact contributions, as the response
carries them: checked against xgboost's and LightGBM's own `pred_contribs`."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression

from ferroscore import Endpoint, Model, SchemaError
from ferroscore.models.linear import from_sklearn

from support import FraudModels

DATA = load_breast_cancer()
RULES = [{"min": 0.8, "decision": "decline"}, {"min": 0.3, "decision": "review"},
         {"decision": "approve"}]  # fmt: skip


def _expected(values: np.ndarray, k: int) -> list[int]:
    order = sorted(range(len(values)), key=lambda c: (-abs(values[c]), c))
    return order[:k]


def test_demo_reasons_are_xgboost_contributions(demo_model_bytes: bytes, demo_schema: str) -> None:
    endpoint = Endpoint("d", 1, Model.load(demo_model_bytes), demo_schema,
                        thresholds=json.dumps(RULES))  # fmt: skip
    names = endpoint.model.feature_names
    assert names is not None
    booster = xgb.Booster(model_file=bytearray(demo_model_bytes))
    contribs = booster.predict(
        xgb.DMatrix(DATA.data, feature_names=booster.feature_names), pred_contribs=True
    )
    rows = [{"features": dict(zip(names, map(float, r), strict=True))} for r in DATA.data[:40]]
    body, decision = endpoint.score(json.dumps({"rows": rows, "explain": 5}))
    answer = json.loads(body)
    for i, (score, reasons) in enumerate(zip(answer["scores"], answer["reasons"], strict=True)):
        want = _expected(contribs[i][:-1], 5)
        assert [r["feature"] for r in reasons] == [names[c] for c in want]
        for r, c in zip(reasons, want, strict=True):
            assert r["contribution"] == pytest.approx(contribs[i][c], abs=1e-5)
            assert r["value"] == pytest.approx(DATA.data[i][c], rel=1e-6)
        rule = next(x for x in RULES if score >= x.get("min", -np.inf))
        assert answer["decisions"][i] == rule["decision"]
    assert [d for *_, d in decision.rows()] == answer["decisions"]
    # explain=0 and no thresholds: the response carries neither.
    plain = Endpoint("d", 1, Model.load(demo_model_bytes), demo_schema)
    one = json.loads(plain.score(json.dumps(rows[0]))[0])
    assert "reasons" not in one
    assert "decision" not in one
    with_query = json.loads(plain.score(json.dumps(rows[0]), explain=2)[0])
    assert len(with_query["reasons"]) == 2


def test_multiclass_reasons_explain_the_predicted_class() -> None:
    iris = load_iris()
    names = ["sl", "sw", "pl", "pw"]
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                        lgb.Dataset(iris.data, iris.target, feature_name=names),
                        num_boost_round=10)  # fmt: skip
    schema = {
        "type": "object",
        "required": names,
        "properties": {
            n: {"type": "number", "x-ferroscore-column": i} for i, n in enumerate(names)
        },
    }
    model = Model.load(booster.model_to_string().encode())
    endpoint = Endpoint("iris", 1, model, json.dumps(schema))
    contribs = booster.predict(iris.data, pred_contrib=True).reshape(len(iris.data), 3, 5)
    margins = booster.predict(iris.data, raw_score=True)
    for i in range(0, 150, 10):
        record = {"features": dict(zip(names, iris.data[i], strict=True)), "explain": 4}
        reasons = json.loads(endpoint.score(json.dumps(record))[0])["reasons"]
        group = int(np.argmax(margins[i]))
        want = _expected(contribs[i][group][:-1], 4)
        assert [r["feature"] for r in reasons] == [names[c] for c in want]
        got = [r["contribution"] for r in reasons]
        np.testing.assert_allclose(got, contribs[i][group][want], atol=1e-9)
    with pytest.raises(SchemaError) as e:
        Endpoint("iris", 1, model, json.dumps(schema), thresholds=json.dumps(RULES))
    assert e.value.document == "thresholds"


def test_linear_reasons_are_the_terms() -> None:
    x = DATA.data[:, :5]
    names = [f"f{i}" for i in range(5)]
    fitted = LogisticRegression(max_iter=5000).fit(x, DATA.target)
    model = Model.load(from_sklearn(fitted, names))
    schema = {
        "type": "object",
        "required": names,
        "properties": {
            n: {"type": "number", "x-ferroscore-column": i} for i, n in enumerate(names)
        },
    }
    endpoint = Endpoint("lin", 1, model, json.dumps(schema))
    record = {"features": dict(zip(names, x[0], strict=True)), "explain": 5}
    reasons = json.loads(endpoint.score(json.dumps(record))[0])["reasons"]
    terms = fitted.coef_[0] * x[0]
    assert [r["feature"] for r in reasons] == [names[c] for c in _expected(terms, 5)]
    assert sum(r["contribution"] for r in reasons) + fitted.intercept_[0] == pytest.approx(
        fitted.decision_function(x[:1])[0]
    )


def test_categorical_reasons_show_the_category_and_unknowns_score_as_missing(
    fraud: FraudModels,
) -> None:
    model = Model.load(fraud.lightgbm)
    assert model.column_kinds == ["numeric", "numeric", "categorical", "numeric"]
    schema = json.loads(fraud.schema.read_text())
    endpoint = Endpoint("f", 1, model, json.dumps(schema))
    features = {"amount": 150.0, "age": 40, "merchant": "travel", "card_present": False}
    reasons = json.loads(endpoint.score(json.dumps({"features": features, "explain": 4}))[0])
    merchant = next(r for r in reasons["reasons"] if r["feature"] == "merchant")
    assert merchant["value"] == "travel"
    unknown = json.loads(
        endpoint.score(json.dumps({"features": {**features, "merchant": "casino"}}))[0]
    )
    missing = {k: v for k, v in features.items() if k != "merchant"}
    schema["properties"]["merchant"]["type"] = ["string", "null"]
    schema["required"].remove("merchant")
    nullable = Endpoint("f", 1, model, json.dumps(schema))
    absent = json.loads(nullable.score(json.dumps({"features": missing}))[0])
    assert unknown["score"] == absent["score"]
    booster = lgb.Booster(model_file=str(fraud.lightgbm))
    row = np.array([[150.0, 40, np.nan, 0.0]])
    assert unknown["score"] == pytest.approx(booster.predict(row)[0], abs=1e-12)
