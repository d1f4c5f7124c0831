"""`ferroscore.Model` against xgboost itself: the same file, the same rows, the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from one_row import assert_alone_as_in_batch, in_odd_rows
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from ferroscore import Model, ModelLoadError


def _train(params: dict[str, object], x: np.ndarray, y: np.ndarray, rounds: int, **dm: object):
    dtrain = xgb.DMatrix(x, label=y, **dm)
    return xgb.train({"seed": 0, "nthread": 1, **params}, dtrain, num_boost_round=rounds)


def _with_nans(x: np.ndarray, share: float = 0.15) -> np.ndarray:
    return in_odd_rows(x, share, np.random.default_rng(0))


def _assert_parity(booster: xgb.Booster, x: np.ndarray, tmp_path: Path, **dm: object) -> None:
    path = tmp_path / "model.json"
    booster.save_model(path)
    model = Model.load(path)
    dtest = xgb.DMatrix(x, **dm)
    ref_margin = booster.predict(dtest, output_margin=True)
    ref = booster.predict(dtest)
    margin = model.predict(x, output="margin")
    # Margins are float32 sums in xgboost's order: bit-exact.
    np.testing.assert_array_equal(margin.astype(np.float32), ref_margin)
    np.testing.assert_allclose(model.predict(x), ref, rtol=0, atol=1e-6)
    assert_alone_as_in_batch(model, x)
    # TreeSHAP: as xgboost's pred_contribs, and every row sums to the margin.
    # (xgboost accumulates in float32: on regression targets near 100, 1e-5 absolute is
    # below its own resolution, hence the relative term.)
    contribs = model.contributions(x)
    np.testing.assert_allclose(
        contribs, booster.predict(dtest, pred_contribs=True), rtol=1e-6, atol=1e-5
    )
    np.testing.assert_allclose(contribs.sum(axis=-1), margin, rtol=1e-6, atol=1e-5)
    # The same model saved as UBJSON scores identically.
    booster.save_model(tmp_path / "model.ubj")
    binary = Model.load(tmp_path / "model.ubj")
    assert binary.format == "xgboost-ubjson"
    np.testing.assert_array_equal(binary.predict(x, output="margin"), margin)


BREAST = load_breast_cancer()
IRIS = load_iris()
DIABETES = load_diabetes()


def test_demo_model_matches_xgboost_bit_for_bit(demo_model_bytes: bytes) -> None:
    booster = xgb.Booster(model_file=bytearray(demo_model_bytes))
    model = Model.load(demo_model_bytes)
    x = BREAST.data
    np.testing.assert_array_equal(
        model.predict(x, output="margin").astype(np.float32),
        booster.inplace_predict(x, predict_type="margin"),
    )
    np.testing.assert_allclose(model.predict(x), booster.inplace_predict(x), atol=1e-6, rtol=0)
    assert model.predict(x.astype(np.float32)).shape == (len(x),)
    assert (model.n_features, model.n_outputs, model.objective) == (30, 1, "binary:logistic")
    assert model.feature_names is not None
    assert model.feature_names[0] == "mean_radius"
    dnamed = xgb.DMatrix(x, feature_names=model.feature_names)
    np.testing.assert_allclose(
        model.contributions(x), booster.predict(dnamed, pred_contribs=True), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize(
    ("params", "x", "y"),
    [
        pytest.param(
            {"objective": "binary:logistic", "max_depth": 6},
            _with_nans(BREAST.data),
            BREAST.target,
            id="binary-nans",
        ),
        pytest.param(
            {"objective": "multi:softprob", "num_class": 3, "max_depth": 4},
            _with_nans(IRIS.data),
            IRIS.target,
            id="multiclass-softprob",
        ),
        pytest.param(
            {"objective": "multi:softmax", "num_class": 3, "max_depth": 3},
            IRIS.data,
            IRIS.target,
            id="multiclass-softmax",
        ),
        pytest.param(
            {"objective": "reg:squarederror", "max_depth": 5, "base_score": 140.0},
            _with_nans(DIABETES.data),
            DIABETES.target,
            id="regression-user-base-score",
        ),
        pytest.param(
            {"objective": "count:poisson", "max_depth": 4},
            DIABETES.data,
            np.floor(DIABETES.target / 20),
            id="poisson",
        ),
        pytest.param(
            {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.2, "max_depth": 4},
            BREAST.data,
            BREAST.target,
            id="dart",
        ),
        pytest.param(
            {"objective": "reg:logistic", "max_depth": 4},
            BREAST.data,
            BREAST.target * 0.8 + 0.1,
            id="reg-logistic",
        ),
        pytest.param(
            {"objective": "binary:logitraw", "max_depth": 4},
            BREAST.data,
            BREAST.target,
            id="logitraw",
        ),
        pytest.param(
            {"objective": "reg:gamma", "max_depth": 4},
            DIABETES.data,
            DIABETES.target,
            id="gamma",
        ),
        pytest.param(
            {"objective": "reg:tweedie", "max_depth": 4},
            DIABETES.data,
            DIABETES.target,
            id="tweedie",
        ),
        pytest.param(
            {"objective": "reg:absoluteerror", "max_depth": 4},
            DIABETES.data,
            DIABETES.target,
            id="absolute-error",
        ),
        pytest.param(
            {"objective": "reg:quantileerror", "quantile_alpha": [0.2, 0.8], "max_depth": 4},
            DIABETES.data,
            DIABETES.target,
            id="two-quantiles",
        ),
        pytest.param(
            {"objective": "rank:pairwise", "max_depth": 4},
            DIABETES.data,
            np.floor(DIABETES.target / 100),
            id="rank-pairwise",
        ),
        pytest.param(
            {
                "objective": "binary:logistic",
                "num_parallel_tree": 4,
                "subsample": 0.7,
                "colsample_bynode": 0.7,
                "max_depth": 5,
            },
            _with_nans(BREAST.data),
            BREAST.target,
            id="random-forest",
        ),
        pytest.param(
            {"objective": "binary:logistic", "grow_policy": "lossguide", "max_leaves": 16},
            BREAST.data,
            BREAST.target,
            id="lossguide",
        ),
    ],
)
def test_objectives_match_xgboost(
    params: dict[str, object], x: np.ndarray, y: np.ndarray, tmp_path: Path
) -> None:
    _assert_parity(_train(params, x, y, rounds=30), x, tmp_path)


def test_categorical_splits_match_xgboost(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 2000
    cat = rng.integers(0, 12, n).astype(np.float64)
    num = rng.normal(size=n)
    y = (np.isin(cat, [1, 4, 7, 9]) ^ (num > 0.3)).astype(np.float64)
    x = np.column_stack([cat, num])
    x[rng.random(x.shape) < 0.05] = np.nan
    dm = {"feature_types": ["c", "q"], "enable_categorical": True}
    params = {"objective": "binary:logistic", "max_depth": 4, "max_cat_to_onehot": 1}
    booster = _train(params, x, y, rounds=20, **dm)
    _assert_parity(booster, x, tmp_path, **dm)


@pytest.mark.parametrize("missing", [0.05, 0.0], ids=["some-missing", "none-missing"])
def test_categorical_splits_with_odd_categories_match_xgboost(
    missing: float, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    n = 3000
    cat = rng.integers(0, 40, n).astype(np.float64)
    num = rng.normal(size=n)
    y = (np.isin(cat, [1, 4, 7, 9, 33, 38]) ^ (num > 0.3)).astype(np.float64)
    x = np.column_stack([cat, num])
    x[rng.random(x.shape) < missing] = np.nan
    dm = {"feature_types": ["c", "q"], "enable_categorical": True}
    params = {"objective": "binary:logistic", "max_depth": 5, "max_cat_to_onehot": 1}
    booster = _train(params, x, y, rounds=30, **dm)
    # Unseen, negative, fractional and huge categories at prediction time.
    x[:9, 0] = [-1, -0.5, 0.7, 41, 1e9, 2.9, 63, 64, 33.2]
    _assert_parity(booster, x, tmp_path, **dm)


def test_more_distinct_category_sets_than_derived_inputs_match_xgboost(tmp_path: Path) -> None:
    # Hundreds of categories split hundreds of ways: past the derived inputs' limit, the trees
    # that split on them are walked node by node.
    rng = np.random.default_rng(4)
    n = 6000
    cat = rng.integers(0, 400, n).astype(np.float64)
    num = rng.normal(size=n)
    y = ((cat % 7 < 3) ^ (num > 0)).astype(np.float64)
    x = np.column_stack([cat, num])
    dm = {"feature_types": ["c", "q"], "enable_categorical": True}
    params = {"objective": "binary:logistic", "max_depth": 6, "max_cat_to_onehot": 1,
              "max_cat_threshold": 200}  # fmt: skip
    booster = _train(params, x, y, rounds=40, **dm)
    trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    sets = set()
    for t in trees:
        bounds = zip(t["categories_segments"], t["categories_sizes"], strict=True)
        sets |= {tuple(t["categories"][a : a + k]) for a, k in bounds}
    assert len(sets) > 256
    _assert_parity(booster, x, tmp_path, **dm)


def test_bad_input_is_refused_clearly(demo_model_bytes: bytes) -> None:
    model = Model.load(demo_model_bytes)
    with pytest.raises(ValueError, match="30 features"):
        model.predict(np.zeros((2, 29)))
    with pytest.raises(ValueError, match="float64 or float32"):
        model.predict(np.zeros((2, 30), dtype=np.int64))
    with pytest.raises(ValueError, match="output must be"):
        model.predict(np.zeros((1, 30)), output="probability")  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError):
        Model.load(b'{"learner": {}}')
    with pytest.raises(ModelLoadError, match="format"):
        Model.load(b"\x00\x01binary")
    with pytest.raises(TypeError):
        Model.load(12)  # type: ignore[arg-type]


def test_large_batches_split_over_threads_score_identically(demo_model_bytes: bytes) -> None:
    model = Model.load(demo_model_bytes)
    booster = xgb.Booster(model_file=bytearray(demo_model_bytes))
    rng = np.random.default_rng(7)
    x = BREAST.data[rng.integers(0, len(BREAST.data), 9000)] * rng.uniform(0.8, 1.2, (9000, 30))
    x[rng.random(x.shape) < 0.02] = np.nan
    parallel = model.predict(x, output="margin")
    np.testing.assert_array_equal(parallel, model.predict(x, output="margin", parallel=False))
    np.testing.assert_array_equal(
        parallel.astype(np.float32), booster.inplace_predict(x, predict_type="margin")
    )
    # Non-contiguous input is copied, not misread.
    np.testing.assert_array_equal(model.predict(x[::2], output="margin"), parallel[::2])


def test_dart_in_the_xgboost_3_3_layout(tmp_path: Path) -> None:
    """From 3.3 a DART model is a gbtree whose model holds weight_drop; the same trees and
    weights must score the same in either layout."""
    booster = _train(
        {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.3, "max_depth": 3},
        BREAST.data,
        BREAST.target,
        rounds=15,
    )
    path = tmp_path / "dart.json"
    booster.save_model(path)
    old = json.loads(path.read_text())
    gb = old["learner"]["gradient_booster"]
    assert gb["name"] == "dart"
    inner = gb["gbtree"]["model"]
    new = json.loads(path.read_text())
    new["learner"]["gradient_booster"] = {
        "name": "gbtree",
        "model": {**inner, "weight_drop": gb["weight_drop"]},
    }
    as_old = Model.load(path.read_bytes()).predict(BREAST.data, output="margin")
    as_new = Model.load(json.dumps(new).encode()).predict(BREAST.data, output="margin")
    np.testing.assert_array_equal(as_old, as_new)
    assert len(set(gb["weight_drop"])) > 1, "the weights matter to this test"
