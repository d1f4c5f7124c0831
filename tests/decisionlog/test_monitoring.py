"""`GET /v1/models/{name}/monitoring` over real HTTP: PSI against the profile captured at
registration, exact against the same sums done here; AUC and log-loss against scikit-learn."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson
import psycopg
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from ferroscore.decisionlog import monitoring

from support import FraudModels, ServerProcess, fraud_frame, fresh_database, push_and_wait

NAME = "monitored"


def _records(frame: Any) -> list[dict[str, Any]]:
    out = []
    for row in frame.drop(columns=["label"]).to_dict("records"):
        features = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        if isinstance(features["amount"], float) and math.isnan(features["amount"]):
            features["amount"] = None
        out.append({"features": features})
    return out


def _now() -> str:
    return quote(datetime.now(UTC).isoformat())


def _score_each(server: ServerProcess, records: list[dict[str, Any]]) -> list[tuple[str, float]]:
    scored = []
    for r in records:
        status, body = server.request("POST", f"/v1/models/{NAME}/score", orjson.dumps(r))
        assert status == 200, body
        scored.append((body["request_id"], body["score"]))
    return scored


def _report(server: ServerProcess, query: str, rows: int, name: str = NAME) -> dict[str, Any]:
    """The report once `rows` decisions of the window are written."""
    deadline = time.monotonic() + 10
    while True:
        status, body = server.request("GET", f"/v1/models/{name}/monitoring?{query}")
        assert status == 200, body
        if body["window"]["rows"] >= rows or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def _psi(values: np.ndarray, reference: dict[str, Any]) -> float:
    """PSI done here with numpy, on the profile's own bins."""
    present = values[~np.isnan(values)]
    edges = np.asarray(reference["edges"])
    bins = np.clip(np.searchsorted(edges, present, side="right"), 1, len(edges) - 1)
    actual = np.bincount(bins, minlength=len(edges))[1:] / len(present)
    expected = np.asarray(reference["proportions"])
    a, e = np.maximum(actual, 1e-4), np.maximum(expected, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def test_drift_and_outcomes(server: ServerProcess, fraud: FraudModels) -> None:
    push_and_wait(server, NAME, fraud.lightgbm, "--data", fraud.parquet)
    _, version = server.request("GET", f"/v1/models/{NAME}/versions/1")
    profile = version["profile"]

    # Traffic like the training data: nothing drifts.
    since = _now()
    same = fraud_frame(400, seed=11)
    scored = _score_each(server, _records(same))
    report = _report(server, f"since={since}", 400)
    assert report["version"] == 1
    assert report["window"]["rows"] == 400
    assert not report["score"]["drifted"]
    assert not any(f["drifted"] for f in report["features"].values()), report["features"]
    # PSI as numpy computes it from the same bins.
    amounts = same["amount"].to_numpy(dtype=float)
    expected = _psi(amounts, profile["features"]["amount"])
    assert report["features"]["amount"]["psi"] == pytest.approx(expected, abs=1e-9)
    assert report["features"]["amount"]["missing_rate"] == pytest.approx(np.isnan(amounts).mean())
    scores = np.array([s for _, s in scored])
    assert report["score"]["psi"] == pytest.approx(_psi(scores, profile["score"]), abs=1e-9)
    assert [s["rows"] for s in report["series"]] == [400]

    # The outcomes arrive: AUC and log-loss as scikit-learn has them.
    for (request_id, _), label in zip(scored, same["label"], strict=True):
        status, body = server.request("POST", f"/v1/decisions/{request_id}/outcome",
                                      orjson.dumps({"label": int(label)}))  # fmt: skip
        assert status == 201, body
    outcomes = _report(server, f"since={since}&bucket=hour", 400)["outcomes"]
    labels = same["label"].to_numpy()
    assert outcomes["rows"] == 400
    assert outcomes["positives"] == labels.sum()
    assert outcomes["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert outcomes["log_loss"] == pytest.approx(log_loss(labels, scores), abs=1e-9)
    assert sum(b["rows"] for b in outcomes["calibration"]) == 400

    # Then the traffic shifts: larger amounts, online merchants only.
    shifted_since = _now()
    shifted = fraud_frame(300, seed=12)
    shifted["amount"] = (shifted["amount"] * 3).clip(upper=500)
    shifted["merchant"] = "online"
    _score_each(server, _records(shifted))
    drifted = _report(server, f"since={shifted_since}", 300)
    assert drifted["features"]["amount"]["drifted"]
    assert drifted["features"]["merchant"]["drifted"]
    assert drifted["features"]["merchant"]["distribution"] == {"online": 1.0}
    assert not drifted["features"]["age"]["drifted"]
    assert drifted["outcomes"]["auc"] is None  # no outcome in this window


def test_outcomes_are_paired_from_either_side_alike(postgres_server: str) -> None:
    """The outcomes are paired with the window's rows from the window's side (many outcomes)
    or looked up one by one (few of them, or none): both give scikit-learn's figures, over
    the window's champion rows only, every row of a batch request counted."""
    rng = np.random.default_rng(5)
    scores, labels = rng.random(300), rng.integers(0, 2, 300)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    with fresh_database(postgres_server) as url, psycopg.connect(url, autocommit=True) as conn:
        for i, (score, label) in enumerate(zip(scores, labels, strict=True)):
            # Requests of two rows: the outcome is the request's, each row scored alike.
            for row in (0, 1):
                conn.execute(
                    "INSERT INTO decisions (request_id, row_index, model, version, features,"
                    " score, created_at, role, tenant) VALUES (%s, %s, 'm', 1, '{1}', %s, %s,"
                    " 'champion', 't')", (f"r{i}", row, [float(score)], at))  # fmt: skip
            conn.execute(
                "INSERT INTO outcomes (tenant, request_id, label, observed_at)"
                " VALUES ('t', %s, %s, now())", (f"r{i}", int(label)))  # fmt: skip
        # Neither another version's rows, a shadow's nor rows outside the window count.
        conn.execute(
            "INSERT INTO decisions (request_id, row_index, model, version, features, score,"
            " created_at, role, tenant) VALUES ('r1', 0, 'm', 2, '{1}', '{0.9}', %s, 'shadow',"
            " 't'), ('r2', 5, 'm', 1, '{1}', '{0.9}', %s, 'champion', 't')",
            (at, at - timedelta(days=3)),
        )
        args = {"tenant": "t", "model": "m", "version": 1, "since": at - timedelta(hours=1),
                "until": at + timedelta(hours=1), "bins": monitoring.CALIBRATION_BINS}  # fmt: skip
        from_window = monitoring._outcomes(conn, args, window_rows=600)
        looked_up = monitoring._outcomes(conn, args, window_rows=10_000)
        conn.execute("DELETE FROM outcomes")
        nothing = monitoring._outcomes(conn, args, window_rows=600)
    doubled_scores, doubled_labels = np.repeat(scores, 2), np.repeat(labels, 2)
    assert from_window == looked_up
    assert from_window["rows"] == 600
    assert from_window["auc"] == pytest.approx(roc_auc_score(doubled_labels, doubled_scores),
                                               abs=1e-9)  # fmt: skip
    assert from_window["log_loss"] == pytest.approx(log_loss(doubled_labels, doubled_scores),
                                                    abs=1e-9)  # fmt: skip
    assert nothing["rows"] == 0
    assert nothing["auc"] is None


@pytest.mark.parametrize(
    ("query", "name"),
    [("version=0", "version"), ("since=never", "since"), ("bucket=week", "bucket"),
     ("until=2026-01-01T00:00:00", "until")],
)  # fmt: skip
def test_bad_monitoring_queries_get_a_400(server: ServerProcess, query: str, name: str) -> None:
    status, body = server.request("GET", f"/v1/models/demo-breast-cancer/monitoring?{query}")
    assert (status, body["errors"][0]["pointer"]) == (400, f"/query/{name}"), body


def test_an_unknown_model_is_a_404(server: ServerProcess) -> None:
    status, body = server.request("GET", "/v1/models/nothing-here/monitoring")
    assert status == 404, body


def test_a_window_of_too_few_rows_has_no_psi(server: ServerProcess, fraud: FraudModels) -> None:
    """One logged row is no distribution: below FERROSCORE_DRIFT_MIN_ROWS (100) the window
    and its buckets say insufficient_data, never a PSI or "drifted"."""
    push_and_wait(server, "thin", fraud.lightgbm, "--data", fraud.parquet)
    since = _now()
    [record] = _records(fraud_frame(1, seed=13))
    status, body = server.request("POST", "/v1/models/thin/score", orjson.dumps(record))
    assert status == 200, body
    deadline = time.monotonic() + 10
    while True:
        status, report = server.request("GET", f"/v1/models/thin/monitoring?since={since}")
        assert status == 200, report
        if report["window"]["rows"] >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert report["window"] == {**report["window"], "rows": 1, "status": "insufficient_data",
                                "min_rows": 100}  # fmt: skip
    assert report["score"]["psi"] is None
    assert not report["score"]["drifted"]
    assert all(f["psi"] is None and not f["drifted"] for f in report["features"].values())
    [point] = report["series"]
    assert point["status"] == "insufficient_data"
    assert point["score_psi"] is None
    assert all(v is None for v in point["features_psi"].values())


def test_a_large_window_is_binned_on_a_sample_and_counted_whole(
    server: ServerProcess, fraud: FraudModels, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Past `SAMPLE_ROWS` rows a window's distributions are a uniform sample's (repeatable:
    the same answer twice) while its row counts stay exact; below it, every row is binned."""
    push_and_wait(server, "sampled", fraud.lightgbm, "--data", fraud.parquet)
    since = datetime.now(UTC)
    frame = fraud_frame(600, seed=17)
    status, body = server.request("POST", "/v1/models/sampled/score",
                                  orjson.dumps({"rows": _records(frame)}))  # fmt: skip
    assert status == 200, body
    full = _report(server, f"since={quote(since.isoformat())}", 600, "sampled")
    assert full["window"]["rows"] == full["window"]["binned_rows"] == 600
    _, version = server.request("GET", "/v1/models/sampled/versions/1")
    monkeypatch.setattr(monitoring, "SAMPLE_ROWS", 150)
    with psycopg.connect(database_url) as conn:
        args = (conn, "default", "sampled", 1, version["profile"], version["input_schema"],
                since, datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip
        sampled, again = monitoring.report(*args), monitoring.report(*args)
    assert sampled["window"]["rows"] == 600
    assert 60 < sampled["window"]["binned_rows"] < 300
    assert sampled == again
    assert [p["rows"] for p in sampled["series"]] == [p["rows"] for p in full["series"]]
    amount = sampled["features"]["amount"]
    assert sum(amount["distribution"].values()) == pytest.approx(1)
    assert amount["missing_rate"] == pytest.approx(full["features"]["amount"]["missing_rate"],
                                                   abs=0.1)  # fmt: skip
