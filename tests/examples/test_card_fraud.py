"""examples/card-fraud as its README runs it: the model trained, the server started with the
example's hooks on a real PostgreSQL, the model pushed with the CLI, transactions scored over
HTTP. The velocity features come from the decision log, the scores match XGBoost's on the
enriched values, and the rule overlay declines large amounts on new devices."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import xgboost as xgb

from support import ServerProcess, push_and_wait, serving, wait_logged

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "card-fraud"
SCORE = "/v1/models/card-fraud/score"
MERCHANTS = ["grocery", "fuel", "online", "travel", "electronics"]


@pytest.fixture(scope="module")
def served(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, xgb.Booster]]:
    out = tmp_path_factory.mktemp("card-fraud")
    subprocess.run([sys.executable, EXAMPLE / "train.py", "--rows", "6000", "--out", out],
                   check=True, capture_output=True)  # fmt: skip
    env = {"DATABASE_URL": module_database, "FERROSCORE_HOOKS": "fraud_hooks",
           "PYTHONPATH": str(EXAMPLE), "FERROSCORE_DECISION_FLUSH_MS": "20"}  # fmt: skip
    with serving(env, out / "server.log") as server:
        schema, thresholds = EXAMPLE / "schema.json", EXAMPLE / "thresholds.json"
        push_and_wait(server, "card-fraud", out / "model.json", "--schema", schema,
                      "--thresholds", thresholds)  # fmt: skip
        yield server, xgb.Booster(model_file=str(out / "model.json"))


def transaction(card: str, device: str, amount: float, **rest: Any) -> dict[str, Any]:
    return {"amount": amount, "merchant": "online", "card_present": False, "card_id": card,
            "device_id": device, **rest}  # fmt: skip


def score(server: ServerProcess, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = server.request("POST", SCORE, json.dumps(body).encode())
    assert status == 200, (answer, server.log()[-3000:])
    return answer


def logged(url: str, request_id: str, rows: int = 1) -> list[dict[str, Any]]:
    """The logged features of a request's rows, with their final decision."""
    return [{**f, "decision": d} for f, d in wait_logged(url, request_id, rows)]


def xgboost_score(model: xgb.Booster, features: dict[str, Any]) -> float:
    frame = pd.DataFrame([{k: features[k] for k in model.feature_names or []}])
    frame["merchant"] = pd.Categorical([MERCHANTS[int(c)] for c in frame["merchant"]], MERCHANTS)
    for flag in ("card_present", "device_new_today"):
        frame[flag] = frame[flag].astype(bool)
    data = xgb.DMatrix(frame, enable_categorical=True)
    return float(model.predict(data)[0])


Served = tuple[ServerProcess, xgb.Booster]


def test_velocity_comes_from_the_decision_log(served: Served, module_database: str) -> None:
    server, model = served
    seen: list[tuple[int, float]] = []
    for amount in (50.0, 70.25):
        answer = score(server, {"features": transaction("card-1", "phone-1", amount)})
        [row] = logged(module_database, answer["request_id"])
        assert row["card_id"] == "card-1"
        assert row["device_id"] == "phone-1"
        assert row["device_new_today"] == 1.0
        seen.append((row["card_count_1h"], row["card_amount_1h"]))
        # Exact on the values the hook supplied.
        assert abs(answer["score"] - xgboost_score(model, row)) <= 1e-6
    assert seen == [(0, 0.0), (1, 50.0)]
    # A batch: earlier rows of the request count as the card's activity too.
    rows = [{"features": transaction("card-1", "phone-1", a)} for a in (10.0, 20.0)]
    rows.append({"features": transaction("card-2", "phone-1", 5.0)})
    answer = score(server, {"rows": rows})
    logged_rows = logged(module_database, answer["request_id"], 3)
    counts = [(r["card_count_1h"], r["card_amount_1h"]) for r in logged_rows]
    assert counts == [(2, 120.25), (3, 130.25), (0, 0.0)]
    for got, row in zip(answer["scores"], logged_rows, strict=True):
        assert abs(got - xgboost_score(model, row)) <= 1e-6


def test_large_amounts_on_a_new_device_are_declined_whatever_the_score(
    served: Served, module_database: str
) -> None:
    server, _ = served
    # A device the log first saw yesterday is not new today.
    with psycopg.connect(module_database) as conn:
        conn.execute(
            "INSERT INTO decisions (request_id, row_index, model, version, features, context,"
            " score, created_at, decision, role, tenant) VALUES ('yesterday', 0, 'card-fraud',"
            " 1, '{12}', %s, '{0.1}', now() - interval '1 day', 'approve', 'champion',"
            " 'default')",
            (json.dumps({"card_id": "card-9", "device_id": "laptop-old"}),),
        )
    big = {"card_present": True, "merchant": "grocery"}
    new = score(server, {"features": transaction("card-3", "phone-new", 6000.0, **big)})
    assert new["decision"] == "decline"
    assert new["reasons"] == [
        {"code": "R12", "text": "amount over 5,000 on a device first seen today"}
    ]
    assert new["extensions"] == {"rules": "card-fraud rules v1", "overridden": 1}
    [row] = logged(module_database, new["request_id"])
    assert row["decision"] == "decline"
    old = score(server, {"features": transaction("card-4", "laptop-old", 6000.0, **big)})
    [row] = logged(module_database, old["request_id"])
    assert row["device_new_today"] == 0.0
    assert old["extensions"]["overridden"] == 0
    # The thresholds' decision stands.
    want = "decline" if old["score"] >= 0.8 else "review" if old["score"] >= 0.5 else "approve"
    assert old["decision"] == want
    assert "reasons" not in old


def test_callers_send_ids_but_not_what_the_hooks_supply(served: Served) -> None:
    server, _ = served
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({k: v for k, v in transaction("c", "d", 1.0).items() if k != "card_id"},
         "/features/card_id", "missing"),
        (transaction("c", "d", 1.0, card_count_1h=0), "/features/card_count_1h",
         "enrichment_only"),
        (transaction("c" * 65, "d", 1.0), "/features/card_id", "max_length"),
        (transaction("c", 42, 1.0), "/features/device_id", "type"),  # type: ignore[arg-type]
    ]  # fmt: skip
    for features, pointer, code in cases:
        status, answer = server.request("POST", SCORE, json.dumps({"features": features}).encode())
        assert status == 422, answer
        assert (answer["errors"][0]["pointer"], answer["errors"][0]["code"]) == (pointer, code)
