"""The decision log records every decision in its spool before the caller answers, and moves
the spool into PostgreSQL: exactly once, across restarts and replays."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from ferroscore import Endpoint, Model
from ferroscore._core import Decision, SpoolFullError
from ferroscore.decisionlog.flusher import DecisionLog


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE decisions")
    with ConnectionPool(database_url, min_size=1, max_size=2, open=True) as pool:
        yield pool


@pytest.fixture
def endpoint(demo_model_bytes: bytes, demo_schema: str) -> Endpoint:
    thresholds = '[{"min": 0.5, "decision": "high"}, {"decision": "low"}]'
    return Endpoint("demo", 7, Model.load(demo_model_bytes), demo_schema, thresholds=thresholds)


def _decisions(endpoint: Endpoint, n: int) -> list[Decision]:
    names = endpoint.model.feature_names
    assert names is not None
    return [
        endpoint.score(json.dumps({"features": {m: float(i + k) for k, m in enumerate(names)}}))[1]
        for i in range(n)
    ]


def _log(pool: ConnectionPool, directory: Path, mode: str = "durable", **kw: float) -> DecisionLog:
    options = {"max_bytes": 1 << 24, "flush_interval_s": 0.05} | kw
    database = pool.conninfo
    assert isinstance(database, str)
    return DecisionLog(pool, database=database, mode=mode, directory=directory,
                       **options)  # type: ignore[arg-type]  # fmt: skip


def _counts(database_url: str) -> tuple[int, int]:
    """(rows, distinct request ids) in the decision table."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT request_id) FROM decisions").fetchone()
    assert row is not None
    return row[0], row[1]


def test_recorded_decisions_reach_the_table(
    pool: ConnectionPool, database_url: str, endpoint: Endpoint, tmp_path: Path
) -> None:
    log = _log(pool, tmp_path)
    log.start()
    decisions = _decisions(endpoint, 50)
    for i, decision in enumerate(decisions):
        log.record(decision, "champion", "acme" if i % 2 else "default")
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
        # The features are the model's inputs, in the order of the version's names.
        inputs = list(json.loads(features).values())
        expected = (index, "demo", 7, scores, inputs, decided, "champion")
        assert by_id[d.request_id][1:] == expected
    # Every segment written is removed: the spool is empty.
    assert log.backlog_bytes() == 0


def test_close_writes_what_is_recorded(
    pool: ConnectionPool, database_url: str, endpoint: Endpoint, tmp_path: Path
) -> None:
    # A long flush interval: only close() can be what writes these.
    log = _log(pool, tmp_path, flush_interval_s=30)
    log.start()
    for decision in _decisions(endpoint, 5):
        log.record(decision, "champion", "default")
    log.close(timeout=10)
    assert _counts(database_url) == (5, 5)


def test_a_new_process_replays_what_a_dead_one_left_once(
    pool: ConnectionPool, database_url: str, endpoint: Endpoint, tmp_path: Path
) -> None:
    # The first process records and never flushes (its flusher never gets a turn: it
    # "dies"); its spool stays on disk, unlocked once the spool is dropped.
    dead = _log(pool, tmp_path, flush_interval_s=3600)
    dead._closing.set()  # the flusher stops before it moves anything
    dead.start()
    for thread in dead.flusher_threads:
        thread.join()
    for decision in _decisions(endpoint, 20):
        dead.record(decision, "champion", "default")
    assert dead.spool is not None
    dead.spool.seal()
    spooled = [p for p in dead.spool.directory.iterdir() if p.suffix == ".seg"]
    kept = tmp_path / "copy"
    kept.mkdir()
    for p in spooled:
        shutil.copy(p, kept)
    dead.spool = None  # drops the Rust spool: its lock is released
    assert _counts(database_url) == (0, 0)

    successor = _log(pool, tmp_path)
    successor.start()
    assert successor.flush(timeout=10)
    assert _counts(database_url) == (20, 20)
    # A segment replayed again (a crash after the commit, before the removal) adds nothing.
    assert successor.spool is not None
    for i, p in enumerate(sorted(kept.iterdir())):
        shutil.copy(p, successor.spool.directory / f"{i:020}.seg")
    assert successor.flush(timeout=10)
    successor.close(timeout=10)
    assert _counts(database_url) == (20, 20)


def _text_row(d: Decision, tenant: str, *, warnings: bool = True) -> bytes:
    """A row as versions before binary rows spooled it: COPY text, the features a jsonb
    object (with the context fields), 12 fields (11 before the warnings field)."""
    [(index, features, scores, decided)] = d.rows()
    fields = [d.request_id, str(index), d.model, str(d.version), features,
              "{" + ",".join(map(repr, scores)) + "}", "2026-12-01 10:00:00.000000+00",
              decided or "\\N", "champion", tenant, "\\N"]  # fmt: skip
    if warnings:
        fields.append("\\N")
    return "\t".join(fields).encode() + b"\n"


def _segment(path: Path, payloads: list[bytes]) -> None:
    """A spool segment file: `[len u32 LE][crc32 u32 LE][payload]` per record."""
    path.write_bytes(b"".join(struct.pack("<II", len(p), zlib.crc32(p)) + p for p in payloads))


def test_segments_of_text_rows_an_earlier_version_spooled_are_replayed_in_the_new_format(
    pool: ConnectionPool, database_url: str, endpoint: Endpoint, tmp_path: Path
) -> None:
    """After an upgrade, a spool left by the version before binary rows (text COPY rows with
    jsonb features, with and without the warnings field) is moved as the new rows: the
    features by the version's names, each row once, a row of a version with no names
    quarantined."""
    features, context = endpoint.logged_names
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE decisions_quarantine, version_features")
        conn.execute("INSERT INTO version_features VALUES ('default', 'demo', 7, %s, %s)",
                     (features, context))  # fmt: skip
    decisions = _decisions(endpoint, 6)
    orphan = _decisions(Endpoint("gone", 1, endpoint.model, endpoint.schema), 1)[0]
    spool = tmp_path / "0"
    spool.mkdir()
    log = _log(pool, tmp_path)
    (spool / "database").write_text(_identity(pool))
    _segment(spool / f"{0:020}.seg", [_text_row(d, "default") for d in decisions[:3]])
    _segment(spool / f"{1:020}.seg",
             [_text_row(d, "default", warnings=False) for d in decisions[3:]]
             + [_text_row(orphan, "default")])  # fmt: skip
    log.start()
    assert log.flush(timeout=20)
    log.close(timeout=10)
    assert _counts(database_url) == (6, 6)
    assert log.quarantined == 1
    with psycopg.connect(database_url) as conn:
        stored = dict(conn.execute("SELECT request_id, features FROM decisions").fetchall())
        [(request_id,)] = conn.execute("SELECT request_id FROM decisions_quarantine").fetchall()
    assert request_id == orphan.request_id
    for d in decisions:
        [(_, features_json, _, _)] = d.rows()
        assert stored[d.request_id] == list(json.loads(features_json).values())


def _identity(pool: ConnectionPool) -> str:
    from ferroscore.decisionlog.flusher import database_identity

    database = pool.conninfo
    assert isinstance(database, str)
    return database_identity(database)


def test_a_full_spool_refuses_and_recovers(
    pool: ConnectionPool, database_url: str, endpoint: Endpoint, tmp_path: Path
) -> None:
    log = _log(pool, tmp_path, max_bytes=4096, flush_interval_s=3600)
    log.start()
    recorded = 0
    for decision in _decisions(endpoint, 100):
        try:
            log.record(decision, "champion", "default")
        except SpoolFullError:
            break
        recorded += 1
    assert 0 < recorded < 100
    assert log.flush(timeout=10)
    # Flushed, the spool takes decisions again.
    log.record(_decisions(endpoint, 1)[0], "champion", "default")
    log.close(timeout=10)
    assert _counts(database_url) == (recorded + 1, recorded + 1)


def test_off_records_nothing(pool: ConnectionPool, database_url: str, endpoint: Endpoint,
                             tmp_path: Path) -> None:  # fmt: skip
    log = _log(pool, tmp_path / "spool", mode="off")
    log.start()
    for decision in _decisions(endpoint, 3):
        log.record(decision, "champion", "default")
    log.close(timeout=5)
    assert _counts(database_url) == (0, 0)
    assert not (tmp_path / "spool").exists()


def test_a_row_postgresql_refuses_costs_no_other_row(
    pool: ConnectionPool, database_url: str, endpoint: Endpoint, tmp_path: Path
) -> None:
    """A decision whose reference holds U+0000 (PostgreSQL's text cannot) in a segment with
    other tenants' decisions: they all reach the table, it alone is quarantined, whole."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE decisions_quarantine")
    good = _decisions(endpoint, 40)
    names = endpoint.model.feature_names
    assert names is not None
    body = json.dumps({"features": {m: 1.0 for m in names}})
    _, poisoned = endpoint.score(body, reference="x\x00y")
    log = _log(pool, tmp_path, flush_interval_s=60)
    log.start()
    for i, decision in enumerate(good[:20]):
        log.record(decision, "champion", f"tenant-{i % 3}")
    log.record(poisoned, "champion", "attacker")
    for i, decision in enumerate(good[20:]):
        log.record(decision, "champion", f"tenant-{i % 3}")
    assert log.flush(timeout=20)
    log.close(timeout=10)
    assert _counts(database_url) == (40, 40)
    assert log.quarantined == 1
    with psycopg.connect(database_url) as conn:
        [(tenant, request_id, error, raw)] = conn.execute(
            "SELECT tenant, request_id, error, row_bytes FROM decisions_quarantine"
        ).fetchall()
    assert (tenant, request_id) == ("attacker", poisoned.request_id)
    assert "0x00" in error
    assert b"x\x00y" in bytes(raw)
    assert list(tmp_path.rglob("*.refused")) == []


def test_the_spool_is_for_this_user_only(
    pool: ConnectionPool, endpoint: Endpoint, tmp_path: Path
) -> None:
    log = _log(pool, tmp_path / "spool", flush_interval_s=60)
    log.start()
    log.record(_decisions(endpoint, 1)[0], "champion", "default")
    assert log.spool is not None
    paths = [tmp_path / "spool", *(tmp_path / "spool").rglob("*")]
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in paths}
    log.close(timeout=10)
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} == {0o700}, modes
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {0o600}, modes
