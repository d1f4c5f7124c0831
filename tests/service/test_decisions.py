"""The decision log writes every recorded decision to PostgreSQL, off the request path."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from ferroscore import Endpoint, Model
from ferroscore.decisions import DecisionLog


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE decisions")
    with ConnectionPool(database_url, min_size=1, max_size=2, open=True) as pool:
        yield pool


def test_recorded_decisions_reach_the_table(
    pool: ConnectionPool, database_url: str, demo_model_bytes: bytes, demo_schema: str
) -> None:
    thresholds = '[{"min": 0.5, "decision": "high"}, {"decision": "low"}]'
    endpoint = Endpoint("demo", 7, Model.load(demo_model_bytes), demo_schema, thresholds=thresholds)
    names = endpoint.model.feature_names
    assert names is not None
    log = DecisionLog(pool, batch_size=16, flush_interval_s=0.05)
    log.start()
    decisions = []
    for i in range(50):
        record = {"features": {n: float(i + k) for k, n in enumerate(names)}}
        _, decision = endpoint.score(json.dumps(record))
        log.record(decision, "champion", "acme" if i % 2 else "default")
        decisions.append(decision)
    assert log.flush(timeout=10)
    log.close(timeout=10)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT request_id, row_index, model, version, score, features, decision, role"
            " FROM decisions"
        ).fetchall()
        tenants = conn.execute("SELECT tenant, count(*) FROM decisions GROUP BY 1").fetchall()
    by_id = {r[0]: r for r in rows}
    assert len(by_id) == 50
    # Each decision belongs to the tenant whose model made it.
    assert sorted(tenants) == [("acme", 25), ("default", 25)]
    for d in decisions:
        [(index, features, scores, decided)] = d.rows()
        assert decided == ("high" if scores[0] >= 0.5 else "low")
        expected = (index, "demo", 7, scores, json.loads(features), decided, "champion")
        assert by_id[d.request_id][1:] == expected


def test_close_writes_what_is_queued(
    pool: ConnectionPool, database_url: str, demo_model_bytes: bytes, demo_schema: str
) -> None:
    endpoint = Endpoint("demo", 1, Model.load(demo_model_bytes), demo_schema)
    names = endpoint.model.feature_names
    assert names is not None
    # A long flush interval: only close() can be what writes these.
    log = DecisionLog(pool, batch_size=1000, flush_interval_s=30)
    log.start()
    for _ in range(5):
        decision = endpoint.score(json.dumps({"features": dict.fromkeys(names, 1.0)}))[1]
        log.record(decision, "champion", "default")
    log.close(timeout=10)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM decisions").fetchone()
    assert row == (5,)
