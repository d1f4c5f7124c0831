"""What PostgreSQL spends per decision row it ingests, by row format and by index: the same
rows (the demo model's 100-row batches, as the service scores them) COPYed into a
partitioned table shaped as `decisions` is, one variant at a time, alternated over rounds.
The cost is the backend's own CPU time (utime + stime from /proc, the server pinned to one
core), per row; the medians of the rounds are reported. Writes bench/results/ingest.{md,json}.
Run: make bench-ingest (also part of make bench)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from peak import CLIENT_CORE, SERVER_CORE
from stacks import bench_database
from timing import RESULTS, machine

from ferroscore import Endpoint, Model
from ferroscore._core import COPY_HEADER, COPY_TRAILER, DECISION_COLUMNS

DEMO = resources.files("ferroscore.demo")

#: Rows per request, as the sustained run sends them.
BATCH = 100
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    request_id: str
    row_index: int
    model: str
    version: int
    features: dict[str, float | None]
    score: list[float]
    created_at: datetime
    decision: str | None


def demo_rows(n: int, seed: int = 7) -> tuple[bytes, list[Row]]:
    """`n` rows the way the service logs them: the core's binary COPY tuples
    (`Decision.copy_rows`, as the spool holds them) and the same rows as values."""
    model = Model.load(DEMO.joinpath("model.json").read_bytes())
    schema = DEMO.joinpath("schema.json").read_text()
    endpoint = Endpoint("breast-cancer", 1, model, schema)
    example = json.loads(DEMO.joinpath("example.json").read_text())["features"]
    rng = random.Random(seed)
    tuples, rows = bytearray(), []
    while len(rows) < n:
        batch = [{k: round(v * rng.uniform(0.9, 1.0), 4) for k, v in example.items()}
                 for _ in range(min(BATCH, n - len(rows)))]  # fmt: skip
        _, decision = endpoint.score(json.dumps({"rows": [{"features": r} for r in batch]}))
        tuples += decision.copy_rows("champion", "default")
        at = datetime.fromtimestamp(decision.scored_at_ns / 1e9, UTC)
        for index, features_json, scores, decided in decision.rows():
            rows.append(Row(decision.request_id, index, decision.model, decision.version,
                            json.loads(features_json), scores, at, decided))  # fmt: skip
    return COPY_HEADER + bytes(tuples) + COPY_TRAILER, rows


def _text(rows: list[Row], features: Callable[[Row], str]) -> bytes:
    """COPY text rows of the columns `TEXT_COLUMNS`, the features as `features` writes them."""

    def array(values: list[float]) -> str:
        return "{" + ",".join(repr(float(v)) for v in values) + "}"

    out = []
    for r in rows:
        fields = [r.request_id, str(r.row_index), r.model, str(r.version), features(r),
                  array(r.score), r.created_at.isoformat(), r.decision or "\\N", "champion",
                  "default", "\\N", "\\N"]  # fmt: skip
        out.append("\t".join(fields))
    return ("\n".join(out) + "\n").encode()


def jsonb_text(rows: list[Row]) -> bytes:
    """The rows as the version before binary rows spooled them: text, jsonb features."""
    return _text(rows, lambda r: json.dumps(r.features, separators=(",", ":")))


def float8_text(rows: list[Row]) -> bytes:
    """Text rows with the features as a float8[] literal: what text costs without jsonb."""
    return _text(rows, lambda r: "{" + ",".join(
        "NULL" if v is None else repr(float(v)) for v in r.features.values()) + "}")  # fmt: skip


TEXT_COLUMNS = ("request_id, row_index, model, version, features, score, created_at, decision,"
                " role, tenant, reference, warnings")  # fmt: skip
BINARY_COLUMNS = " ".join(DECISION_COLUMNS.split())


#: Every index `decisions` had (migration 0007) or has (0013: one in time order for the list
#: and monitoring, instead of two), by name.
INDEXES = {
    "unique key": "UNIQUE (request_id, row_index, model, version, created_at)",
    "(tenant, model, version, created_at)": "INDEX ON {t} (tenant, model, version, created_at)",
    "(tenant, created_at)": "INDEX ON {t} (tenant, created_at)",
    "(tenant, reference)": "INDEX ON {t} (tenant, reference) WHERE reference IS NOT NULL",
    "time order": "INDEX ON {t} (tenant, created_at) INCLUDE (model, version, role)",
}
BEFORE_0013 = ("unique key", "(tenant, model, version, created_at)", "(tenant, created_at)",
               "(tenant, reference)")  # fmt: skip
NOW = ("unique key", "time order", "(tenant, reference)")


@dataclass(frozen=True)
class Variant:
    name: str
    #: The rows sent: "jsonb text" (the previous format), "float8[] text" or "binary" (ours).
    payload: str
    indexes: tuple[str, ...]
    #: COPY into the migrated `decisions` itself (its partitions, its indexes) instead.
    real: bool = False


VARIANTS = [
    Variant("before: text, features jsonb, every index", "jsonb text", BEFORE_0013),
    Variant("text, features jsonb, the unique key only", "jsonb text", ("unique key",)),
    Variant("text, features float8[], every index", "float8[] text", BEFORE_0013),
    Variant("binary, features float8[], every index", "binary", BEFORE_0013),
    Variant("binary, float8[], one time-ordered index for list and monitoring", "binary", NOW),
    Variant(
        "binary, float8[], unique key + (tenant, model, version, created_at)",
        "binary",
        ("unique key", "(tenant, model, version, created_at)"),
    ),
    Variant("binary, float8[], the unique key only", "binary", ("unique key",)),
    Variant("binary, float8[], no index (the floor)", "binary", ()),
    Variant("**now: binary into the migrated `decisions`**", "binary", NOW, real=True),
]


def create(conn: psycopg.Connection[Any], table: str, v: Variant, day: datetime) -> None:
    """A table as `decisions` is (partitioned by day, today's partition) with `v`'s
    features column and indexes."""
    features = "jsonb" if v.payload == "jsonb text" else "double precision[]"
    unique = "," + INDEXES["unique key"] if "unique key" in v.indexes else ""
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(
        f"CREATE TABLE {table} (request_id text NOT NULL, row_index integer NOT NULL,"
        f" model text NOT NULL, version integer NOT NULL, features {features} NOT NULL,"
        " context jsonb, score double precision[] NOT NULL, created_at timestamptz NOT NULL,"
        " decision text, role text NOT NULL, tenant text NOT NULL, reference text,"
        f" warnings jsonb{unique}) PARTITION BY RANGE (created_at)"
    )
    start = day.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    conn.execute(f"CREATE TABLE {table}_today PARTITION OF {table} FOR VALUES FROM"
                 f" ('{start.isoformat()}') TO ('{end.isoformat()}')")  # fmt: skip
    for name in v.indexes:
        if name != "unique key":
            conn.execute("CREATE " + INDEXES[name].format(t=table))


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Ingested:
    cpu_s: float
    #: WAL the COPY wrote, and the table's size after it with its indexes (every partition).
    wal_bytes: int
    stored_bytes: int


def ingest(database: str, v: Variant, payload: bytes, rows: int, day: datetime) -> Ingested:
    """What PostgreSQL spent to COPY `payload` into a fresh table of variant `v` (or into the
    emptied `decisions`)."""
    table = "decisions" if v.real else "ingest_bench"
    columns = BINARY_COLUMNS if v.payload == "binary" else TEXT_COLUMNS
    statement = f"COPY {table} ({columns}) FROM STDIN"
    if v.payload == "binary":
        statement += " (FORMAT binary)"
    with psycopg.connect(database, autocommit=True) as conn:
        if v.real:
            conn.execute("TRUNCATE decisions")
        else:
            create(conn, table, v, day)
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        conn.execute("CHECKPOINT")
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        before = backend_cpu_s(row[0])
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
            for i in range(0, len(payload), 1 << 20):
                copy.write(payload[i : i + (1 << 20)])
        spent = backend_cpu_s(row[0]) - before
        sizes = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s),"
            " (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
            "  WHERE inhparent = %s::regclass)", (lsn[0] if lsn else None, table),
        ).fetchone()  # fmt: skip
        assert sizes is not None
        counted = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert counted is not None
        assert counted[0] == rows, (v.name, counted, rows)
        conn.execute("TRUNCATE decisions" if v.real else f"DROP TABLE {table}")
    return Ingested(spent, int(sizes[0]), int(sizes[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one round")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds = 20_000, 1
    RESULTS.mkdir(exist_ok=True)
    from ferroscore.decisionlog import partitions
    from ferroscore.migrations import migrate

    database = bench_database(SERVER_CORE)  # the database alone on its core
    migrate(database)
    with psycopg.connect(database) as conn:
        partitions.maintain(conn, 0)
    os.sched_setaffinity(0, {CLIENT_CORE})
    binary, rows = demo_rows(args.rows)
    day = rows[0].created_at
    payloads = {"jsonb text": jsonb_text(rows), "float8[] text": float8_text(rows),
                "binary": binary}  # fmt: skip
    spent: dict[str, list[Ingested]] = {v.name: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for v in VARIANTS:
            spent[v.name].append(ingest(database, v, payloads[v.payload], len(rows), day))
            time.sleep(0.2)

    def per_row(v: Variant, field: str) -> float:
        return statistics.median(getattr(i, field) for i in spent[v.name]) / len(rows)

    results = {
        v.name: {"us_per_row": max(per_row(v, "cpu_s"), 1 / _TICKS / len(rows)) * 1e6,
                 "bytes_per_row": len(payloads[v.payload]) / len(rows),
                 "wal_bytes_per_row": per_row(v, "wal_bytes"),
                 "stored_bytes_per_row": per_row(v, "stored_bytes")}
        for v in VARIANTS
    }  # fmt: skip
    before = results[VARIANTS[0].name]["us_per_row"]
    (RESULTS / "ingest.json").write_text(json.dumps(
        {"machine": machine(), "rows": len(rows), "rounds": args.rounds, "variants": results},
        indent=2))  # fmt: skip
    lines = [
        "# What PostgreSQL spends per decision row it ingests",
        "",
        f"Machine: {machine()}, {platform.platform()}. PostgreSQL (embedded, pinned to core "
        f"{SERVER_CORE}) COPYs {len(rows):,} rows of the demo model's 100-row batches (30 "
        "features) into a table partitioned by day as `decisions` is, per variant: a fresh "
        "one with the variant's format and indexes, or (the last) the migrated `decisions` "
        "itself. The cost is the backend's CPU time per row (utime + stime, at "
        f"{_TICKS} ticks/s), the median of {args.rounds} alternated rounds; with the WAL the "
        "COPY wrote and the table's size after it, indexes included, per row. Command: "
        "`make bench-ingest`.",
        "",
        "| variant | PostgreSQL CPU per row (µs) | rows/s per PostgreSQL core | ÷ before | "
        "bytes per row sent | WAL bytes per row | stored bytes per row |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v in VARIANTS:
        r = results[v.name]
        lines.append(
            f"| {v.name} | {r['us_per_row']:.1f} | {1e6 / r['us_per_row']:,.0f} | "
            f"{before / r['us_per_row']:.2f}x | {r['bytes_per_row']:.0f} | "
            f"{r['wal_bytes_per_row']:.0f} | {r['stored_bytes_per_row']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / "ingest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
