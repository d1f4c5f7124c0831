"""Writes the seed corpus of the model loaders' fuzz harness
(`rust/ferroscore-core/tests/load_fuzz.rs`): small real models of every format and feature
the loaders read (numeric, categorical and missing splits, multiclass, linear trees, DART,
UBJSON), trained here on synthetic data. Run: `.venv/bin/python scripts/fuzz_corpus.py`."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

OUT = Path(__file__).resolve().parent.parent / "rust/ferroscore-core/tests/corpus"


def frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "a": rng.normal(size=n), "b": rng.uniform(size=n),
        "c": pd.Categorical(rng.integers(0, 5, n)),
    })  # fmt: skip
    x.loc[rng.uniform(size=n) < 0.1, "a"] = np.nan
    y = (x["a"].fillna(0) + (x["c"].cat.codes % 2) > 0.5).astype(int).to_numpy()
    return x, y


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    x, y = frame()
    three = (y + (x["b"] > 0.5).astype(int)).to_numpy()
    params = {"verbose": -1, "num_leaves": 4, "min_data_in_leaf": 5}
    for name, extra, target in [
        ("lightgbm-binary.txt", {"objective": "binary"}, y),
        ("lightgbm-multiclass.txt", {"objective": "multiclass", "num_class": 3}, three),
        ("lightgbm-linear.txt", {"objective": "regression", "linear_tree": True}, y),
    ]:
        data = x if "linear_tree" not in extra else x[["a", "b"]]
        booster = lgb.train({**params, **extra}, lgb.Dataset(data, target), num_boost_round=3)
        (OUT / name).write_text(booster.model_to_string())
    dm = xgb.DMatrix(x, y, enable_categorical=True)
    for name, extra in [
        ("xgboost-binary", {"objective": "binary:logistic"}),
        ("xgboost-dart", {"objective": "binary:logistic", "booster": "dart"}),
    ]:
        booster = xgb.train({"max_depth": 2, "tree_method": "hist", **extra}, dm, 3)
        booster.save_model(OUT / f"{name}.json")
        booster.save_model(OUT / f"{name}.ubj")
    multi = xgb.DMatrix(x, three, enable_categorical=True)
    booster = xgb.train({"max_depth": 2, "objective": "multi:softprob", "num_class": 3}, multi, 2)
    booster.save_model(OUT / "xgboost-multiclass.json")
    (OUT / "linear.json").write_text(json.dumps({
        "format": "ferroscore-linear", "link": "softmax", "features": ["a", "b"],
        "coefficients": {"a": [0.5, -1.0], "b": [2.0, 0.25]}, "intercept": [0.1, -0.1],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
