"""`Scorer`: whole tables checked by the service's rules and scored by the same engine, exact
against the training libraries, pickled cheaply for cluster workers."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost as xgb

from ferroscore import Endpoint, Model, ValidationError
from ferroscore.models.inference import open_schema
from ferroscore.scorer import Scorer

from support import FraudModels

THRESHOLDS = [{"min": 0.5, "decision": "decline"}, {"decision": "approve"}]


@pytest.fixture(scope="module")
def scorer(fraud: FraudModels) -> Scorer:
    return Scorer(fraud.lightgbm, fraud.schema.read_text(), THRESHOLDS, explain=2)


def features_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="label")


def test_scores_equal_lightgbm_with_missing_values_and_categories(
    scorer: Scorer, fraud: FraudModels
) -> None:
    frame = fraud.frame()
    assert frame["amount"].isna().any()
    scored = scorer.score(frame)
    expected = lgb.Booster(model_file=str(fraud.lightgbm)).predict(features_of(frame))
    np.testing.assert_allclose(scored.table.column("score").to_numpy(), expected, atol=1e-9)
    assert scored.valid.all()
    assert scored.errors == []
    # The label is no feature: it is carried, first, as the table's own column.
    assert scored.table.column_names[:2] == ["label", "score"]
    assert scored.table.column("label").to_pylist() == frame["label"].tolist()


def test_scores_equal_xgboost_with_its_own_categories(fraud: FraudModels) -> None:
    frame = fraud.frame()
    model = Model.load(fraud.xgboost)
    # Without a schema the model's own names and categories are the features, typed as the
    # data's columns are.
    schema = open_schema(model, pa.Schema.from_pandas(frame))
    assert set(schema["properties"]) == set(fraud.features)
    scored = Scorer(model, schema).score(frame)
    reference = xgb.XGBClassifier()
    reference.load_model(fraud.xgboost)
    expected = reference.predict_proba(features_of(frame))[:, 1]
    np.testing.assert_allclose(scored.table.column("score").to_numpy(), expected, atol=1e-7)
    # Untyped, every column the model does not know the categories of reads numbers.
    with pytest.raises(ValidationError, match="expected a number, got a boolean"):
        Scorer(model).score(frame)


def test_multiclass_gives_a_score_column_per_class() -> None:
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    x.loc[::7, "a"] = np.nan
    y = (x["a"].fillna(0) > 0).astype(int) + (x["b"] > 0.5).astype(int)
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(x, y), 20
    )
    scorer = Scorer(booster.model_to_string().encode())
    table = scorer.score(pa.Table.from_pandas(x)).table
    assert table.column_names == ["score_0", "score_1", "score_2"]
    got = np.column_stack([table.column(c).to_numpy() for c in table.column_names])
    np.testing.assert_allclose(got, booster.predict(x), atol=1e-9)


def test_decisions_and_reasons_are_the_services(scorer: Scorer, fraud: FraudModels) -> None:
    frame = fraud.frame().head(200)
    table = scorer.score(frame).table
    endpoint = Endpoint(
        "fraud", 1, Model.load(fraud.lightgbm), fraud.schema.read_text(),
        thresholds=json.dumps(THRESHOLDS),
    )  # fmt: skip
    body, _ = endpoint.score(json.dumps({"rows": rows_of(frame)}), explain=2)
    answer = json.loads(body)
    assert table.column("decision").to_pylist() == answer["decisions"]
    for k in (1, 2):
        assert table.column(f"reason_{k}").to_pylist() == [
            r[k - 1]["feature"] for r in answer["reasons"]
        ]
        np.testing.assert_allclose(
            table.column(f"reason_{k}_contribution").to_numpy(),
            [r[k - 1]["contribution"] for r in answer["reasons"]],
        )


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The records a client would send for `frame`'s rows (missing values left out)."""
    records = []
    for r in features_of(frame).to_dict("records"):
        features = {k: v.item() if hasattr(v, "item") else v for k, v in r.items()}
        records.append({"features": {k: v for k, v in features.items() if v == v}})
    return records


BAD = pd.DataFrame(
    {
        "amount": [10.0, -3.0, 50.0, np.inf, 20.0],
        "age": pd.array([30, 40, None, 25, 10**17], dtype="Int64"),
        "merchant": ["moon", "grocery", "fuel", "travel", "online"],
        "card_present": [True, False, True, None, True],
    }
)


def test_bad_rows_get_the_services_codes_and_pointers(scorer: Scorer, fraud: FraudModels) -> None:
    with pytest.raises(ValidationError) as refused:
        scorer.score(BAD, first_row=100)
    got = {(e["pointer"], e["code"]) for e in refused.value.errors}
    assert got == {
        ("/rows/101/features/amount", "minimum"),
        ("/rows/102/features/age", "missing"),
        ("/rows/103/features/amount", "type"),
        ("/rows/103/features/card_present", "missing"),
        ("/rows/104/features/age", "maximum"),
    }
    assert str(refused.value).startswith("row 101: minimum at /rows/101/features/amount")
    assert "(4 rows refused)" in str(refused.value)
    # The service refuses the same values with the same codes (JSON cannot say infinity).
    endpoint = Endpoint("fraud", 1, Model.load(fraud.lightgbm), fraud.schema.read_text())
    for row, code in ((1, "minimum"), (2, "missing"), (4, "maximum")):
        record = {k: v for k, v in BAD.iloc[row].items() if not pd.isna(v)}
        body = json.dumps({"features": {k: getattr(v, "item", lambda v=v: v)()
                                        for k, v in record.items()}})  # fmt: skip
        with pytest.raises(ValidationError) as service:
            endpoint.score(body)
        assert code in {e["code"] for e in service.value.errors}


def test_partial_scores_the_valid_rows_and_lists_the_others(scorer: Scorer) -> None:
    scored = scorer.score(BAD, partial=True)
    # The unknown merchant of row 0 scores as missing, as the schema says.
    assert scored.valid.tolist() == [True, False, False, False, False]
    scores = scored.table.column("score")
    assert [s is None for s in scores.to_pylist()] == [False, True, True, True, True]
    assert scored.table.column("decision").null_count == 4
    assert sorted({e.row for e in scored.errors}) == [1, 2, 3, 4]
    engines = scorer.score_pandas(BAD, partial=True)
    assert engines["error"].notna().tolist() == [False, True, True, True, True]
    assert engines["error"][1] == "minimum at /rows/1/features/amount: must be >= 0, got -3"


def test_text_columns_are_read_as_their_features_type(scorer: Scorer) -> None:
    text = pa.table(
        {
            "amount": ["12.5", None, "x"],
            "age": ["33", "9007199254740993", "40"],
            "merchant": ["fuel", "fuel", "travel"],
            "card_present": ["true", "False", "1"],
        }
    ).cast(pa.schema([(n, pa.string()) for n in ("amount", "age", "merchant", "card_present")]))
    scored = scorer.score(text, partial=True, text=True)
    assert scored.valid.tolist() == [True, False, False]
    assert {(e.row, e.code) for e in scored.errors} == {(1, "integer_range"), (2, "type")}
    assert {e.pointer for e in scored.errors if e.row == 2} == {
        "/rows/2/features/amount",
        "/rows/2/features/card_present",
    }
    # Without `text`, a string is not a number.
    assert not scorer.score(text, partial=True).valid.any()


def test_an_absent_optional_feature_is_missing_and_a_required_one_refused(
    scorer: Scorer, fraud: FraudModels
) -> None:
    frame = fraud.frame().head(50)
    without_amount = scorer.score(frame.drop(columns="amount")).table.column("score")
    booster = lgb.Booster(model_file=str(fraud.lightgbm))
    expected = booster.predict(features_of(frame).assign(amount=np.nan))
    np.testing.assert_allclose(without_amount.to_numpy(), expected, atol=1e-9)
    with pytest.raises(ValidationError, match='required feature "age" is missing'):
        scorer.score(frame.drop(columns="age"))


def test_kept_columns(scorer: Scorer, fraud: FraudModels) -> None:
    frame = fraud.frame().head(10).assign(id=range(10))
    keep = Scorer(fraud.lightgbm, fraud.schema.read_text(), keep=["id", "amount"])
    # The schema scores an unseen merchant as missing: its warnings have a column.
    assert keep.score(frame).table.column_names == ["id", "amount", "score", "warnings"]
    with pytest.raises(ValueError, match="no column 'nope'"):
        Scorer(fraud.lightgbm, fraud.schema.read_text(), keep=["nope"]).score(frame)
    # An input column named like an output is not carried over it.
    clash = frame.assign(score=1.0)
    assert scorer.score(clash).table.column_names.count("score") == 1


def test_pickles_as_its_model_and_is_rebuilt_once_per_process(
    scorer: Scorer, fraud: FraudModels
) -> None:
    frame = fraud.frame().head(300)
    data = pickle.dumps(scorer)
    assert len(data) < len(fraud.lightgbm.read_bytes()) + 10_000
    first, second = pickle.loads(data), pickle.loads(data)
    assert first is second
    assert first.score(frame).table.equals(scorer.score(frame).table)
    model = Model.load(fraud.xgboost)
    again = pickle.loads(pickle.dumps(model))
    assert again is pickle.loads(pickle.dumps(model))
    x = features_of(frame).assign(merchant=frame["merchant"].cat.codes).to_numpy(float)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_threads_and_batches_change_nothing(scorer: Scorer, fraud: FraudModels) -> None:
    frame = pd.concat([fraud.frame()] * 4, ignore_index=True)  # 12,000 rows: split over threads
    whole = scorer.score(frame).table
    one = Scorer(fraud.lightgbm, fraud.schema.read_text(), THRESHOLDS, explain=2, threads=1)
    assert one.score(frame).table.equals(whole)
    batches = pa.Table.from_pandas(frame, preserve_index=False).to_batches(max_chunksize=1000)
    out = pa.Table.from_batches(list(scorer.score_batches(batches)))
    assert out.equals(scorer.score_arrow(pa.Table.from_batches(batches)))
    assert out.column("score").equals(whole.column("score"))


def test_output_schema_is_what_scoring_gives(scorer: Scorer, fraud: FraudModels) -> None:
    table = pa.Table.from_pandas(fraud.frame().head(5), preserve_index=False)
    assert scorer.output_schema(table.schema) == scorer.score_arrow(table).schema
    assert scorer.score_arrow(table.slice(0, 0)).num_rows == 0


def test_scorer_is_public_at_the_top_without_loading_arrow_for_the_service() -> None:
    import ferroscore
    import ferroscore.scorer

    assert ferroscore.Scorer is ferroscore.scorer.Scorer
    done = subprocess.run(
        [sys.executable, "-c", "import sys, ferroscore; print('pyarrow' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "False"
