"""`ferroscore decisions export` writes the log to Parquet as it is in PostgreSQL;
`ferroscore decisions drift` charts a model's drift from a running server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pyarrow.parquet as pq
import pytest

from ferroscore.models.registry import DEMO_MODEL

from support import (
    FraudModels,
    ServerProcess,
    ferroscore,
    fraud_frame,
    push_and_wait,
    wait_logged,
)

SCORE = f"/v1/models/{DEMO_MODEL}/score"


@pytest.fixture(scope="module")
def server(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = ServerProcess({"DATABASE_URL": module_database, "FERROSCORE_DECISION_FLUSH_MS": "20"},
                        tmp_path_factory.mktemp("decisions-cli") / "server.log")  # fmt: skip
    try:
        srv.wait_ready()
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()


def test_export_writes_the_window_of_the_log(
    server: ServerProcess, module_database: str, tmp_path: Path
) -> None:
    database_url = module_database
    since = datetime.now(UTC)
    body = (Path(__file__).parents[2] / "python/ferroscore/demo/example.json").read_bytes()
    ids = []
    for i in range(5):
        status, scored = server.request("POST", SCORE, body, {"x-request-id": f"app-{i}"})
        assert status == 200, scored
        ids.append(scored["request_id"])
    for request_id in ids:
        wait_logged(database_url, request_id)
    out = tmp_path / "decisions.parquet"
    until = datetime.now(UTC) + timedelta(seconds=1)
    done = ferroscore("decisions", "export", "--since", since.isoformat(), "--until",
                       until.isoformat(), "--model", DEMO_MODEL, "-o", out,
                       env={"DATABASE_URL": database_url})  # fmt: skip
    assert "5 decision rows written" in done.stdout
    table = pq.read_table(out).to_pylist()
    assert [r["request_id"] for r in table] == ids
    assert [r["reference"] for r in table] == [f"app-{i}" for i in range(5)]
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT score, created_at FROM decisions WHERE request_id = %s", (ids[0],)
        ).fetchone()
    assert stored is not None
    assert (table[0]["scores"], table[0]["created_at"]) == (stored[0], stored[1])


def test_drift_charts_the_models_series(server: ServerProcess, fraud: FraudModels) -> None:
    push_and_wait(server, "charted", fraud.lightgbm, "--data", fraud.parquet)
    frame = fraud_frame(200, seed=5).drop(columns=["label"])
    frame["merchant"] = "travel"  # every transaction at one merchant: it drifts
    records = [{"features": {k: (None if v != v else v) for k, v in r.items()}}
               for r in frame.astype(object).to_dict("records")]  # fmt: skip
    status, scored = server.request("POST", "/v1/models/charted/score",
                                    orjson.dumps({"rows": records}))  # fmt: skip
    assert status == 200, scored
    env = {"FERROSCORE_API_KEY": server.key or ""}
    args = ("decisions", "drift", "charted", "--days", "1", "--url", server.url)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while "200 rows" not in (done := ferroscore(*args, env=env)).stdout:
        assert datetime.now(UTC) < deadline, done.stdout
    assert "charted v1: drift per day" in done.stdout
    # The most drifted feature comes first, with its bar.
    [merchant] = [line for line in done.stdout.splitlines() if line.startswith("│ merchant")]
    assert "█" in merchant
    as_json = orjson.loads(ferroscore(*args, "--json", env=env).stdout)
    assert as_json["features"]["merchant"]["drifted"]
