"""`ferroscore.Model` against LightGBM itself, model by model: every objective family, the three
missing-value types, categorical bitsets, linear trees and random-forest averaging."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from one_row import assert_alone_as_in_batch, in_odd_rows
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification

from ferroscore import Model

BREAST = load_breast_cancer()
IRIS = load_iris()
DIABETES = load_diabetes()
RNG = np.random.default_rng(0)
DEEP = make_classification(n_samples=1500, n_features=20, n_informative=12, random_state=0)


def _with_nans(x: np.ndarray, share: float = 0.15) -> np.ndarray:
    return in_odd_rows(x, share, RNG)


# What LightGBM's zero_as_missing counts as zero (|x| <= 1e-35), and just past it.
NEAR_ZERO = [0.0, -0.0, 1e-36, -1e-35, 1e-35, 2e-35, -1e-34, 1e-300]


def _with_zeros(x: np.ndarray, share: float = 0.2) -> np.ndarray:
    return in_odd_rows(x, share, RNG, NEAR_ZERO)


def _categorical(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    cat = rng.integers(0, 40, n).astype(np.float64)
    num = rng.normal(size=n)
    y = (np.isin(cat, [1, 4, 7, 9, 33, 38]) ^ (num > 0.3)).astype(np.float64)
    x = np.column_stack([cat, num])
    x[rng.random(x.shape) < 0.05] = np.nan
    # Unseen, negative and fractional categories at prediction time.
    x[:10, 0] = [-1, -0.5, 0.7, 41, 1e9, 2.9, 63, 64, np.nan, 33.2]
    return x, y


def _missing_types(text: str) -> set[int]:
    """The missing-value types (0 None, 1 Zero, 2 NaN) of the model's numeric splits."""
    types = set()
    for line in text.splitlines():
        if line.startswith("decision_type="):
            types |= {(int(d) >> 2) & 3 for d in line.split("=")[1].split() if not int(d) & 1}
    return types


def _parity(
    params: dict[str, Any], x: np.ndarray, y: np.ndarray, rounds: int = 20, **ds: Any
) -> str:
    booster = lgb.train(
        {"verbose": -1, "num_leaves": 15, "seed": 0, "deterministic": True, **params},
        lgb.Dataset(x, y, **ds),
        num_boost_round=rounds,
    )
    text = booster.model_to_string()
    model = Model.load(text.encode())
    np.testing.assert_allclose(model.predict(x), booster.predict(x), rtol=0, atol=1e-6)
    assert_alone_as_in_batch(model, x)
    if params.get("boosting") != "rf":
        # LightGBM's raw_score is the un-averaged sum; ours is averaged for rf, so compare
        # margins only where the two agree.
        np.testing.assert_allclose(
            model.predict(x, output="margin"),
            booster.predict(x, raw_score=True),
            rtol=0,
            atol=1e-9,
        )
    if params.get("boosting") != "rf" and not params.get("linear_tree"):
        contribs = model.contributions(x)
        expected = booster.predict(x, pred_contrib=True).reshape(contribs.shape)
        np.testing.assert_allclose(contribs, expected, rtol=1e-9, atol=1e-9)
    return text


CASES = [
    pytest.param({"objective": "binary"}, _with_nans(BREAST.data), BREAST.target, id="binary-nan"),
    pytest.param(
        {"objective": "binary", "sigmoid": 0.7}, BREAST.data, BREAST.target, id="binary-sigmoid"
    ),
    pytest.param(
        {"objective": "binary", "zero_as_missing": True},
        _with_zeros(BREAST.data),
        BREAST.target,
        id="zero-as-missing",
    ),
    pytest.param(
        {"objective": "binary", "use_missing": False},
        _with_nans(BREAST.data),
        BREAST.target,
        id="missing-none",
    ),
    pytest.param(
        {"objective": "multiclass", "num_class": 3},
        _with_nans(IRIS.data),
        IRIS.target,
        id="multiclass",
    ),
    pytest.param(
        {"objective": "multiclassova", "num_class": 3}, IRIS.data, IRIS.target, id="multiclassova"
    ),
    pytest.param({"objective": "regression"}, _with_nans(DIABETES.data), DIABETES.target, id="l2"),
    pytest.param(
        {"objective": "regression", "reg_sqrt": True}, DIABETES.data, DIABETES.target, id="l2-sqrt"
    ),
    pytest.param({"objective": "regression_l1"}, DIABETES.data, DIABETES.target, id="l1"),
    pytest.param({"objective": "huber"}, DIABETES.data, DIABETES.target, id="huber"),
    pytest.param(
        {"objective": "quantile", "alpha": 0.8}, DIABETES.data, DIABETES.target, id="quantile"
    ),
    pytest.param({"objective": "poisson"}, DIABETES.data, DIABETES.target / 50, id="poisson"),
    pytest.param({"objective": "gamma"}, DIABETES.data, DIABETES.target, id="gamma"),
    pytest.param({"objective": "tweedie"}, DIABETES.data, DIABETES.target, id="tweedie"),
    pytest.param(
        {"objective": "cross_entropy"},
        BREAST.data,
        np.clip(BREAST.target * 0.8 + 0.1, 0, 1),
        id="cross-entropy",
    ),
    pytest.param(
        {"objective": "cross_entropy_lambda"},
        BREAST.data,
        np.clip(BREAST.target * 0.8 + 0.1, 0, 1),
        id="cross-entropy-lambda",
    ),
    pytest.param(
        {"objective": "binary", "linear_tree": True},
        _with_nans(BREAST.data, 0.05),
        BREAST.target,
        id="linear-trees",
    ),
    pytest.param(
        {"objective": "binary", "boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1},
        BREAST.data,
        BREAST.target,
        id="random-forest",
    ),
    pytest.param(
        {"objective": "binary", "boosting": "dart"}, BREAST.data, BREAST.target, id="dart"
    ),
    pytest.param(
        # Trees 14-24 deep, as LightGBM grows them leaf-wise without max_depth.
        {"objective": "binary", "num_leaves": 255, "min_data_in_leaf": 3},
        _with_nans(DEEP[0], 0.05),
        DEEP[1],
        id="deep-trees",
    ),
]


@pytest.mark.parametrize(("params", "x", "y"), CASES)
def test_matches_lightgbm(params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> None:
    text = _parity(params, x, y)
    # The model really holds what the case is about.
    if params.get("zero_as_missing"):
        assert 1 in _missing_types(text)
    elif params.get("use_missing") is False:
        assert _missing_types(text) == {0}
    elif np.isnan(x).any():
        assert 2 in _missing_types(text)
    if params.get("linear_tree"):
        assert "is_linear=1" in text
    if params.get("boosting") == "rf":
        assert "average_output" in text


def test_categorical_bitsets_match_lightgbm() -> None:
    x, y = _categorical()
    text = _parity(
        {"objective": "binary", "max_cat_to_onehot": 1, "min_data_per_group": 5, "cat_smooth": 1},
        x,
        y,
        categorical_feature=[0],
    )
    assert "cat_threshold=" in text


def test_categorical_splits_without_missing_values_match_lightgbm() -> None:
    # No missing input in a block: the walk takes the one-comparison test.
    x, y = _categorical()
    x = np.nan_to_num(x[10:], nan=2.0)
    _parity({"objective": "binary", "max_cat_to_onehot": 1, "min_data_per_group": 5},
            x, y[10:], categorical_feature=[0])  # fmt: skip


def test_more_distinct_categorical_splits_than_derived_inputs_match_lightgbm() -> None:
    # Hundreds of categories split hundreds of ways: past the derived inputs' limit, those
    # trees are walked node by node.
    rng = np.random.default_rng(5)
    n = 6000
    cat = rng.integers(0, 400, n).astype(np.float64)
    num = rng.normal(size=n)
    y = ((cat % 7 < 3) ^ (num > 0)).astype(np.float64)
    x = np.column_stack([cat, num, rng.integers(0, 50, n).astype(np.float64)])
    text = _parity(
        {"objective": "binary", "max_cat_to_onehot": 1, "min_data_per_group": 2,
         "cat_smooth": 1, "max_cat_threshold": 200, "num_leaves": 31},
        x, y, rounds=40, categorical_feature=[0, 2],
    )  # fmt: skip
    assert _distinct_categorical_splits(text) > 256


def _distinct_categorical_splits(text: str) -> int:
    """The distinct (column, bitset) pairs of the model's categorical splits."""
    keys = set()
    for block in text.split("\nTree=")[1:]:
        f = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "cat_boundaries" not in f:
            continue
        bounds = [int(b) for b in f["cat_boundaries"].split()]
        words = f["cat_threshold"].split()
        for column, kind, at in zip(f["split_feature"].split(), f["decision_type"].split(),
                                    f["threshold"].split(), strict=True):  # fmt: skip
            if int(kind) & 1:
                c = int(float(at))
                keys.add((column, tuple(words[bounds[c] : bounds[c + 1]])))
    return len(keys)


def test_ranking_scores_match_lightgbm() -> None:
    x, y = DIABETES.data, np.floor(DIABETES.target / 100)
    _parity({"objective": "lambdarank"}, x, y, group=[len(x) // 2, len(x) - len(x) // 2])


def test_model_facts() -> None:
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1},
        lgb.Dataset(IRIS.data, IRIS.target, feature_name=["a", "b", "c", "d"]),
        num_boost_round=2,
    )
    model = Model.load(booster.model_to_string().encode())
    assert (model.n_features, model.n_outputs, model.objective) == (4, 3, "multiclass")
    assert model.feature_names == ["a", "b", "c", "d"]


def test_contributions_refuse_what_lightgbm_does_not_explain() -> None:
    booster = lgb.train(
        {"objective": "binary", "linear_tree": True, "verbose": -1},
        lgb.Dataset(BREAST.data, BREAST.target),
        num_boost_round=2,
    )
    model = Model.load(booster.model_to_string().encode())
    with pytest.raises(ValueError, match="contributions"):
        model.contributions(BREAST.data[:2])
