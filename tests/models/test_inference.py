"""Schemas inferred from training data score every training row as the reference library
does, with categories mapped to the codes the model was trained with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

from ferroscore import Endpoint, Model, ValidationError
from ferroscore.models.inference import (
    InferenceError,
    Options,
    infer_schema,
    read_table,
    reference_profile,
)
from ferroscore.models.linear import from_sklearn

from support import FraudModels, fraud_frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict("records"):
        features = {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
        out.append({"features": {k: v.item() if hasattr(v, "item") else v
                                 for k, v in features.items()}})  # fmt: skip
    return out


def scores(model: Model, schema: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    endpoint = Endpoint("m", 1, model, json.dumps(schema))
    body, _ = endpoint.score(json.dumps({"rows": records(frame)}))
    return np.array(json.loads(body)["scores"])


@pytest.mark.parametrize("source", ["parquet", "csv"])
@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_inferred_schemas_score_the_training_data_exactly(
    fraud: FraudModels, source: str, library: str
) -> None:
    path = fraud.lightgbm if library == "lightgbm" else fraud.xgboost
    model = Model.load(path)
    schema = infer_schema(model, read_table(getattr(fraud, source)))
    props = schema["properties"]
    assert props["merchant"]["x-ferroscore-categories"] == {"fuel": 0, "grocery": 1,
                                                            "online": 2, "travel": 3}  # fmt: skip
    assert props["amount"]["type"] == ["number", "null"]
    assert props["age"]["type"] == "integer"
    assert props["card_present"]["type"] == "boolean"
    assert "amount" not in schema["required"]
    assert "age" in schema["required"]
    frame = fraud.frame()
    x = frame.drop(columns="label")
    if library == "lightgbm":
        want = lgb.Booster(model_file=str(path)).predict(x)
    else:
        booster = xgb.Booster(model_file=str(path))
        want = booster.inplace_predict(x)
    np.testing.assert_allclose(scores(model, schema, x), want, atol=1e-6)


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_categories_keep_the_codes_they_were_trained_with(tmp_path: Path, library: str) -> None:
    frame = fraud_frame(2000, seed=3)
    order = ["travel", "online", "grocery", "fuel"]
    frame["merchant"] = frame["merchant"].cat.reorder_categories(order)
    x, y = frame.drop(columns="label"), frame["label"]
    if library == "lightgbm":
        booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_per_group": 5},
                            lgb.Dataset(x, y), num_boost_round=20)  # fmt: skip
        artifact, want = booster.model_to_string().encode(), booster.predict(x)
    else:
        fitted = xgb.XGBClassifier(n_estimators=20, max_depth=4, enable_categorical=True,
                                   tree_method="hist").fit(x, y)  # fmt: skip
        artifact = bytes(fitted.get_booster().save_raw("json"))
        want = fitted.predict_proba(x)[:, 1]
    frame.to_parquet(tmp_path / "d.parquet")
    # In CSV the categories are plain strings: their sorted order is not the trained one.
    frame.astype({"merchant": str}).to_csv(tmp_path / "d.csv", index=False)
    model = Model.load(artifact)
    trained = {w: i for i, w in enumerate(order)}
    for source in ("d.parquet", "d.csv"):
        schema = infer_schema(model, read_table(tmp_path / source), artifact=artifact)
        assert schema["properties"]["merchant"]["x-ferroscore-categories"] == trained
        np.testing.assert_allclose(scores(model, schema, x), want, atol=1e-6)
    # Without the artifact's own list, CSV's sorted order maps the codes wrong: the reason
    # the artifact's list comes first.
    guessed = infer_schema(model, read_table(tmp_path / "d.csv"))
    assert guessed["properties"]["merchant"]["x-ferroscore-categories"] != trained


def test_margins_strictness_and_unseen_categories(fraud: FraudModels) -> None:
    model = Model.load(fraud.lightgbm)
    table = read_table(fraud.parquet)
    strict = infer_schema(model, table, Options(hard_bounds=True, unknown_category="error"))
    frame = fraud.frame()
    age = strict["properties"]["age"]
    assert (age["minimum"], age["maximum"]) == (frame.age.min(), frame.age.max())
    # By default the range is the training range: recorded, refusing nothing.
    soft = infer_schema(model, table)["properties"]["age"]
    assert soft["x-ferroscore-training-range"] == [frame.age.min(), frame.age.max()]
    assert "minimum" not in soft
    assert "maximum" not in soft
    wide = infer_schema(model, table, Options(margin=0.5, hard_bounds=True))["properties"]
    assert wide["amount"]["minimum"] == 0, "never below zero when the data never is"
    assert wide["amount"]["maximum"] > frame.amount.max() * 1.4
    open_ = infer_schema(model, table, Options(margin=None))["properties"]["age"]
    assert not {"minimum", "maximum", "x-ferroscore-training-range"} & set(open_)
    endpoint = Endpoint("m", 1, model, json.dumps(strict))
    record = {"features": {"age": 40, "merchant": "casino", "card_present": True}}
    with pytest.raises(ValidationError) as e:
        endpoint.score(json.dumps(record))
    assert e.value.errors[0]["pointer"] == "/features/merchant"
    lenient = Endpoint("m", 1, model, json.dumps(infer_schema(model, table)))
    lenient.score(json.dumps(record))


def test_linear_models_and_unnamed_columns(tmp_path: Path) -> None:
    frame = fraud_frame(1000).drop(columns="merchant")
    frame["amount"] = frame["amount"].fillna(0.0)
    x = frame.drop(columns="label").astype(float)
    fitted = LogisticRegression(max_iter=5000).fit(x, frame["label"])
    model = Model.load(from_sklearn(fitted, list(x.columns)))
    frame.to_csv(tmp_path / "d.csv", index=False)
    schema = infer_schema(model, read_table(tmp_path / "d.csv"))
    assert schema["required"] == ["amount", "age", "card_present"]
    want = fitted.predict_proba(x)[:, 1]
    np.testing.assert_allclose(scores(model, schema, frame.drop(columns="label")), want,
                               atol=1e-9)  # fmt: skip
    # A model without feature names takes the data's columns in order, less --exclude.
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x.to_numpy(), frame.label),
                        num_boost_round=5)  # fmt: skip
    unnamed = Model.load(bytes(booster.save_raw("json")))
    assert unnamed.feature_names is None
    with pytest.raises(InferenceError, match="exclude"):
        infer_schema(unnamed, read_table(tmp_path / "d.csv"))
    named = infer_schema(unnamed, read_table(tmp_path / "d.csv"), Options(exclude=["label"]))
    assert list(named["properties"]) == ["amount", "age", "card_present"]


def test_reference_profile(fraud: FraudModels) -> None:
    model = Model.load(fraud.lightgbm)
    table = read_table(fraud.parquet)
    profile = reference_profile(model, infer_schema(model, table), table)
    assert profile["rows"] == table.num_rows
    amount = profile["features"]["amount"]
    assert 0.03 < amount["missing_rate"] < 0.07
    assert sum(amount["proportions"]) == pytest.approx(1)
    assert sum(profile["features"]["merchant"]["frequencies"].values()) == pytest.approx(1)
    assert set(profile["features"]["card_present"]["frequencies"]) == {"false", "true"}
    assert len(profile["score"]["edges"]) == len(profile["score"]["proportions"]) + 1


def test_data_that_cannot_describe_the_model(fraud: FraudModels) -> None:
    model = Model.load(fraud.lightgbm)
    table = read_table(fraud.parquet)
    with pytest.raises(InferenceError, match="merchant"):
        infer_schema(model, table.drop_columns(["merchant"]))
    odd = table.set_column(1, "age", pa.array([[1]] * table.num_rows))
    with pytest.raises(InferenceError, match="age"):
        infer_schema(model, odd)
