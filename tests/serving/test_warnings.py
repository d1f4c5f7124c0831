"""Schemas inferred from data flag what production sends rather than refuse it, over real
HTTP: a value outside its training range and an unseen category are scored, each with a
warning (code, pointer, bound) in the answer only when there is one, in the V2 answer's
parameters, in the decision log, in the metrics and in monitoring; `--strict` refuses both."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import lightgbm as lgb
import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families

from support import (
    FraudModels,
    ServerProcess,
    create_key,
    ferroscore,
    fraud_frame,
    push_and_wait,
)

NAME = "soft"
RECORD = {"amount": 120.0, "age": 40, "merchant": "travel", "card_present": False}


#: The models this module pushes stay out of the session database's listings.
OWN_DATABASE = True


def score(server: ServerProcess, body: dict[str, Any], name: str = NAME) -> tuple[int, Any]:
    return server.request("POST", f"/v1/models/{name}/score", orjson.dumps(body))


def test_warnings_in_the_answer_the_log_the_metrics_and_monitoring(
    server: ServerProcess, fraud: FraudModels, module_database: str
) -> None:
    push_and_wait(server, NAME, fraud.lightgbm, "--data", fraud.parquet)
    _, version = server.request("GET", f"/v1/models/{NAME}/versions/1")
    schema = version["input_schema"]["properties"]
    low, high = schema["age"]["x-ferroscore-training-range"]
    assert "maximum" not in schema["age"]
    since = quote(datetime.now(UTC).isoformat())

    # Inside the range, a known category: the answer's bytes carry no warnings at all.
    status, plain = score(server, {"features": RECORD})
    assert status == 200, plain
    assert "warnings" not in plain

    # Next year's data is scored, exactly as the library scores it, and flagged.
    odd = {**RECORD, "age": high + 7, "merchant": "casino"}
    status, flagged = score(server, {"features": odd})
    assert status == 200, flagged
    assert abs(flagged["score"] - _library(fraud, {**odd, "merchant": None})) < 1e-6
    assert flagged["warnings"] == [
        {"pointer": "/features/age", "code": "out_of_training_range",
         "message": flagged["warnings"][0]["message"], "bound": high},
        {"pointer": "/features/merchant", "code": "unknown_category",
         "message": flagged["warnings"][1]["message"]},
    ]  # fmt: skip
    assert str(high) in flagged["warnings"][0]["message"]
    # null and an unseen category agree: both are scored as missing (null without a warning:
    # the caller said so).
    status, missing = score(server, {"features": {**RECORD, "merchant": None}})
    assert status == 200, missing
    assert "warnings" not in missing
    status, unseen = score(server, {"features": {**RECORD, "merchant": "casino"}})
    assert unseen["score"] == missing["score"]
    assert abs(missing["score"] - _library(fraud, {**RECORD, "merchant": None})) < 1e-6

    # A batch points at its rows.
    batch = {"rows": [{"features": RECORD}, {"features": {**RECORD, "age": low - 1}}]}
    status, answer = score(server, batch)
    assert status == 200, answer
    assert [(w["pointer"], w["bound"]) for w in answer["warnings"]] == [
        ("/rows/1/features/age", low)
    ]

    # V2: the same warnings, by row and feature, in the answer's parameters.
    columns = [
        {"name": "amount", "shape": [2], "datatype": "FP64", "data": [120.0, 120.0]},
        {"name": "age", "shape": [2], "datatype": "INT64", "data": [40, high + 1]},
        {"name": "merchant", "shape": [2], "datatype": "BYTES", "data": ["travel", "travel"]},
        {"name": "card_present", "shape": [2], "datatype": "BOOL", "data": [False, True]},
    ]
    status, v2 = server.request("POST", f"/v2/models/{NAME}/infer",
                                json.dumps({"inputs": columns}).encode())  # fmt: skip
    assert status == 200, v2
    [warning] = v2["parameters"]["warnings"]
    assert {k: warning[k] for k in ("row", "feature", "code", "bound")} == {
        "row": 1, "feature": "age", "code": "out_of_training_range", "bound": high}  # fmt: skip

    # The decision log keeps them with the row; metrics count them by feature.
    deadline = time.monotonic() + 10
    while True:
        status, logged = server.request("GET", f"/v1/decisions/{flagged['request_id']}")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200, logged
    [kept] = [r for r in logged["decisions"] if r["role"] == "champion"]
    assert kept["warnings"] == [
        {"feature": "age", "code": "out_of_training_range", "bound": high},
        {"feature": "merchant", "code": "unknown_category"},
    ]
    counted = _warnings_counted(server, create_key(module_database, scopes=("metrics",)))
    assert counted[(NAME, "age", "out_of_training_range")] >= 3
    assert counted[(NAME, "merchant", "unknown_category")] >= 2

    # Monitoring counts them over the window, by feature and code.
    deadline = time.monotonic() + 10
    while True:
        _, report = server.request("GET", f"/v1/models/{NAME}/monitoring?since={since}")
        if report["window"]["rows"] >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert report["features"]["age"]["warnings"] == {"out_of_training_range": 3}
    assert report["features"]["merchant"]["warnings"] == {"unknown_category": 2}


def _library(fraud: FraudModels, features: dict[str, Any]) -> float:
    """LightGBM's own score of one record (None: missing)."""
    row = fraud_frame(1).drop(columns="label")
    for name, value in features.items():
        row.loc[0, name] = np.nan if value is None else value
    return float(lgb.Booster(model_file=str(fraud.lightgbm)).predict(row[fraud.features])[0])


def _warnings_counted(server: ServerProcess, token: str) -> dict[tuple[str, str, str], float]:
    import urllib.request

    headers = {"authorization": f"Bearer {token}"}
    request = urllib.request.Request(server.url + "/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as r:
        text = r.read().decode()
    return {
        (s.labels["model"], s.labels["feature"], s.labels["code"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "ferroscore_input_warnings"
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_strict_schemas_refuse_what_the_data_never_showed(
    server: ServerProcess, fraud: FraudModels, tmp_path: Any
) -> None:
    strict = tmp_path / "strict.json"
    strict.write_text(ferroscore("schema", "infer", fraud.lightgbm, "--data", fraud.parquet,
                                 "--strict").stdout)  # fmt: skip
    push_and_wait(server, "strict-bounds", fraud.lightgbm, "--schema", strict)
    high = json.loads(strict.read_text())["properties"]["age"]["maximum"]
    status, refused = score(server, {"features": {**RECORD, "age": high + 1}}, "strict-bounds")
    assert (status, refused["errors"][0]["code"]) == (422, "maximum")
    status, refused = score(server, {"features": {**RECORD, "merchant": "casino"}},
                            "strict-bounds")  # fmt: skip
    assert (status, refused["errors"][0]["pointer"]) == (422, "/features/merchant")
    status, refused = score(server, {"features": {**RECORD, "merchant": None}}, "strict-bounds")
    assert status == 422, refused


def test_offline_scores_carry_a_warnings_column(fraud: FraudModels, tmp_path: Any) -> None:
    import pyarrow.parquet as pq

    schema = tmp_path / "soft.json"
    schema.write_text(ferroscore("schema", "infer", fraud.lightgbm, "--data",
                                 fraud.parquet).stdout)  # fmt: skip
    frame = fraud_frame(4, seed=5)
    high = json.loads(schema.read_text())["properties"]["age"]["x-ferroscore-training-range"][1]
    frame.loc[2, "age"] = high + 10
    data, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.to_parquet(data)
    ferroscore("score", fraud.lightgbm, "-i", data, "-o", out, "--schema", schema)
    table = pq.read_table(out)
    warnings = table.column("warnings").to_pylist()
    assert [w is None for w in warnings] == [True, True, False, True]
    assert json.loads(warnings[2]) == [{"feature": "age", "code": "out_of_training_range",
                                        "bound": high}]  # fmt: skip
    want = lgb.Booster(model_file=str(fraud.lightgbm)).predict(frame[fraud.features])
    np.testing.assert_allclose(table.column("score").to_numpy(), want, atol=1e-6)
