"""examples/credit as its README runs it: a monotone LightGBM model pushed with the schema
inferred from its training data, served with the example's decision hook on a real
PostgreSQL. Scores match LightGBM, each decline carries the reason codes the lender's table
gives its strongest risk contributions (checked against LightGBM's own `pred_contrib`), and
the served scores keep the model's monotone constraints."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from support import ServerProcess, push_and_wait, serving, wait_logged

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "credit"
SCORE = "/v1/models/credit/score"


def _example_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"credit_example_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _example_module("credit_hooks")


@pytest.fixture(scope="module")
def served(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, lgb.Booster, pd.DataFrame]]:
    out = tmp_path_factory.mktemp("credit")
    subprocess.run([sys.executable, EXAMPLE / "train.py", "--rows", "8000", "--out", out],
                   check=True, capture_output=True)  # fmt: skip
    env = {"DATABASE_URL": module_database, "FERROSCORE_HOOKS": "credit_hooks",
           "PYTHONPATH": str(EXAMPLE)}  # fmt: skip
    with serving(env, out / "server.log") as server:
        push_and_wait(server, "credit", out / "model.txt", "--data", out / "train.parquet",
                      "--thresholds", EXAMPLE / "thresholds.json")  # fmt: skip
        booster = lgb.Booster(model_file=str(out / "model.txt"))
        yield server, booster, pd.read_parquet(out / "train.parquet")


Served = tuple[ServerProcess, lgb.Booster, pd.DataFrame]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as callers send them: missing values as null, categories as their strings."""
    out = []
    for row in frame.astype(object).to_dict("records"):
        out.append({"features": {k: None if pd.isna(v) else v for k, v in row.items()}})
    return out


def score(server: ServerProcess, rows: list[dict[str, Any]]) -> dict[str, Any]:
    status, answer = server.request("POST", SCORE, json.dumps({"rows": rows}).encode())
    assert status == 200, (answer, server.log()[-3000:])
    return answer


def test_declines_carry_the_reason_codes_of_their_strongest_risk_factors(
    served: Served, module_database: str
) -> None:
    server, booster, data = served
    frame = data.iloc[:300]
    answer = score(server, records(frame))
    want = booster.predict(frame)
    np.testing.assert_allclose(answer["scores"], want, rtol=0, atol=1e-6)
    decisions = answer["decisions"]
    assert {"approve", "review", "decline"} <= set(decisions)
    # LightGBM's own contributions, through the example's mapping: the same codes, in order.
    contributions = booster.predict(frame, pred_contrib=True)[:, :-1]
    table = hooks.reason_codes()
    names = booster.feature_name()
    for i, decision in enumerate(decisions):
        got = answer["reasons"][i]
        if decision != "decline":
            assert got is None
            continue
        expected = hooks.principal_reasons(contributions[i], names, table)
        assert [r["code"] for r in got] == [r["code"] for r in expected]
        assert 1 <= len(got) <= hooks.MAX_REASONS
        assert len({r["code"] for r in got}) == len(got)
        np.testing.assert_allclose([r["contribution"] for r in got],
                                   [r["contribution"] for r in expected], atol=1e-6)  # fmt: skip
    assert answer["extensions"] == {"reason_codes": "reason_codes.csv"}
    logged = wait_logged(module_database, answer["request_id"], len(frame))
    assert [d for _, d in logged] == decisions


def test_an_approval_only_request_keeps_its_answer(served: Served) -> None:
    server, booster, data = served
    frame = data.iloc[:300]
    approved = frame[booster.predict(frame) < 0.15].iloc[:5]
    answer = score(server, records(approved))
    assert answer["decisions"] == ["approve"] * 5
    assert "reasons" not in answer
    assert "extensions" not in answer


def test_served_scores_keep_the_monotone_constraints(served: Served) -> None:
    server, _, data = served
    base = records(data.iloc[:1])[0]["features"]
    for feature, direction in (("utilization", 1), ("debt_to_income", 1), ("income", -1),
                               ("delinquencies_2y", 1)):  # fmt: skip
        low, high = data[feature].min(), data[feature].max()
        grid = np.linspace(low, high, 25)
        if feature == "delinquencies_2y":
            grid = np.unique(grid.round())
        rows = [{"features": {**base, feature: float(x) if feature != "delinquencies_2y"
                              else int(x)}} for x in grid]  # fmt: skip
        scores = np.asarray(score(server, rows)["scores"])
        steps = np.diff(scores) * direction
        assert (steps >= -1e-12).all(), (feature, scores)
        assert scores[-1] * direction > scores[0] * direction, feature
