"""Linear and logistic models against scikit-learn, through
`ferroscore.models.linear.from_sklearn`."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from ferroscore import Endpoint, Model, SchemaError
from ferroscore.models.linear import from_sklearn


def _names(n: int) -> list[str]:
    return [f"f{i}" for i in range(n)]


def _scaled(x: np.ndarray) -> np.ndarray:
    return StandardScaler().fit_transform(x)


CLASSIFIERS = [
    pytest.param(_scaled(load_breast_cancer().data), load_breast_cancer().target, id="binary"),
    pytest.param(load_iris().data, load_iris().target, id="multinomial"),
]


@pytest.mark.parametrize(("x", "y"), CLASSIFIERS)
def test_logistic_regression_matches_sklearn(x: np.ndarray, y: np.ndarray) -> None:
    clf = LogisticRegression(max_iter=2000).fit(x, y)
    model = Model.load(from_sklearn(clf, _names(x.shape[1])))
    proba = clf.predict_proba(x)
    expected = proba[:, 1] if proba.shape[1] == 2 else proba
    np.testing.assert_allclose(model.predict(x), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        model.predict(x, output="margin"), clf.decision_function(x), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize(
    "estimator", [LinearRegression(), Ridge(alpha=0.5)], ids=["linear", "ridge"]
)
def test_regressors_match_sklearn(estimator: Any) -> None:
    data = load_diabetes()
    y = (
        np.column_stack([data.target, data.target * 0.5 + 3])
        if isinstance(estimator, Ridge)
        else data.target
    )
    reg = estimator.fit(data.data, y)
    model = Model.load(from_sklearn(reg, _names(data.data.shape[1])))
    assert model.objective == "linear:identity"
    np.testing.assert_allclose(model.predict(data.data), reg.predict(data.data), rtol=0, atol=1e-9)


def test_linear_models_need_every_input() -> None:
    x, y = load_iris().data, load_iris().target
    artifact = from_sklearn(LogisticRegression(max_iter=500).fit(x, y), _names(4))
    model = Model.load(artifact)
    props = {n: {"type": "number", "x-ferroscore-column": i} for i, n in enumerate(_names(4))}
    optional = json.dumps({"type": "object", "properties": props})
    with pytest.raises(SchemaError, match="missing input"):
        Endpoint("iris", 1, model, optional)
    required = json.dumps({"type": "object", "properties": props, "required": _names(4)})
    body, _ = Endpoint("iris", 1, model, required).score(
        json.dumps({"features": dict(zip(_names(4), x[0], strict=True))})
    )
    assert json.loads(body)["score"] == pytest.approx(list(model.predict(x[:1])[0]))


def test_export_refuses_what_it_cannot_name() -> None:
    reg = LinearRegression().fit(load_diabetes().data, load_diabetes().target)
    with pytest.raises(ValueError, match="feature names"):
        from_sklearn(reg)
    with pytest.raises(ValueError, match="3 feature names"):
        from_sklearn(reg, _names(3))
