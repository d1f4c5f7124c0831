"""Sustained batch load on the decision log: 8 wrk connections sending batches of 100 rows
for 60 s to ferroscore (`durable`, pinned to core 0; wrk and PostgreSQL on core 1). Reports
the rows/s the API acknowledged next to the rows/s that reached PostgreSQL during the load,
the backlog when the load stopped and how long it took to drain, the 503s the bounded spool
answered, the server's peak memory, once a second the rows PostgreSQL took and the spool's
depth (the service's `ferroscore_decision_spool_bytes`), as a table and a chart, and how long
`ferroscore decisions drift` takes over the run's own log. Writes
bench/results/sustained.{md,json,png}. Run: make bench."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import psycopg
from peak import CLIENT_CORE, SERVER_CORE, lua_script, wrk
from stacks import (
    BATCH_ROWS,
    BENCH,
    Server,
    batch_body,
    bench_database,
    bench_key,
    ferroscore_stack,
    free_port,
)
from timing import RESULTS, machine

#: Inserted rows of the decision table and its partitions, from PostgreSQL's statistics (a
#: count(*) would cost the database a scan per sample).
_INSERTED = (
    "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relid IN"
    " (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'decisions'::regclass)"
)


def inserted(database: str) -> int:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(_INSERTED).fetchone()
    return int(row[0]) if row else 0


def spool_bytes(metrics_url: str, headers: dict[str, str]) -> float:
    """The server's decisions spooled and not yet in PostgreSQL, in bytes (0 if unread)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(metrics_url, headers=headers),
                                    timeout=2) as answer:  # fmt: skip
            text = answer.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ferroscore_decision_spool_bytes"))  # fmt: skip


def give_the_demo_a_profile(database: str) -> None:
    """The demo model's reference distributions from its training data (scikit-learn's
    breast-cancer set), as `models push --data` keeps them: what drift compares with."""
    import pyarrow as pa
    from psycopg.types.json import Jsonb
    from sklearn.datasets import load_breast_cancer

    from ferroscore import Model
    from ferroscore.models.inference import reference_profile

    data = load_breast_cancer()
    names = [re.sub(r"[^0-9a-z]+", "_", n.lower()).strip("_") for n in data.feature_names]
    table = pa.table({n: data.data[:, i] for i, n in enumerate(names)})
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT artifact, input_schema FROM models"
                           " WHERE name = 'breast-cancer' AND version = 1").fetchone()  # fmt: skip
        assert row is not None, "the server registers the demo model at its first start"
        profile = reference_profile(Model.load(bytes(row[0])), row[1], table)
        conn.execute("UPDATE models SET profile = %s WHERE name = 'breast-cancer'"
                     " AND version = 1", (Jsonb(profile),))  # fmt: skip


def drift_seconds(url: str, headers: dict[str, str]) -> tuple[float, int]:
    """How long `ferroscore decisions drift` takes to answer over the bench's own log (the
    last day: every row of the run), and how many rows its window held."""
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    env = {**os.environ, "FERROSCORE_URL": url, "FERROSCORE_API_KEY": token}
    command = [str(Path(sys.executable).parent / "ferroscore"), "decisions", "drift",
               "breast-cancer", "--days", "1", "--json"]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return took, int(json.loads(done.stdout)["window"]["rows"])


def monitoring_seconds(
    base: str, headers: dict[str, str], database: str
) -> tuple[float, float, int]:
    """How long the monitoring route takes over the log's last million rows (the window
    from the millionth newest row's time): first on the rows as just written, then once
    `VACUUM (ANALYZE)` has been through them, as autovacuum does after a burst of inserts;
    and how many rows the window held."""
    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute("SELECT created_at FROM decisions ORDER BY created_at DESC"
                           " OFFSET 1000000 LIMIT 1").fetchone()  # fmt: skip
        since = urllib.parse.quote(row[0].isoformat()) if row else "1970-01-01T00:00:00Z"
        url = f"{base}/v1/models/breast-cancer/monitoring?since={since}"

        def answered() -> tuple[float, int]:
            started = time.monotonic()
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=600) as answer:  # fmt: skip
                report = json.loads(answer.read())
            return time.monotonic() - started, int(report["window"]["rows"])

        fresh, rows = answered()
        conn.execute("VACUUM (ANALYZE) decisions")
        vacuumed, _ = answered()
    return fresh, vacuumed, rows


def chart(seconds: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] for s in seconds]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, [s["rows_per_s"] for s in seconds], color="tab:blue")
    ax.set_xlabel("seconds of load")
    ax.set_ylabel("rows/s into PostgreSQL", color="tab:blue")
    ax.set_ylim(bottom=0)
    depth = ax.twinx()
    depth.plot(t, [s["spool_mib"] for s in seconds], color="tab:red")
    depth.set_ylabel("spool depth (MiB)", color="tab:red")
    depth.set_ylim(bottom=0)
    ax.set_title("Sustained 100-row batches, durable decision log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 s: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 3
    RESULTS.mkdir(exist_ok=True)
    from ferroscore.migrations import migrate

    database = bench_database(CLIENT_CORE)
    migrate(database)
    port = free_port()
    spool = Path(tempfile.mkdtemp(prefix="ferroscore-sustained-"))
    stack = ferroscore_stack("ferroscore-sustained", Path(sys.executable), port, database,
                             BENCH.parent, headers=bench_key(database), body=batch_body(),
                             env={"FERROSCORE_SPOOL_DIR": str(spool)})  # fmt: skip
    server = Server(stack, port, SERVER_CORE, RESULTS)
    peak_rss = 0
    sampling = threading.Event()
    loaded = threading.Event()
    per_second: list[dict[str, float]] = []
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def sample_seconds(started: float, base: int) -> None:
        last_t, last_rows = started, base
        while not loaded.wait(1.0):
            now, rows = time.monotonic(), inserted(database)
            per_second.append({
                "t": round(now - started, 1), "rows_in_postgres": rows - base,
                "rows_per_s": (rows - last_rows) / (now - last_t),
                "spool_mib": spool_bytes(metrics_url, stack.headers) / 2**20,
            })  # fmt: skip
            last_t, last_rows = now, rows

    def sample_rss() -> None:
        nonlocal peak_rss
        proc = psutil.Process(server.proc.pid)
        while not sampling.wait(0.2):
            try:
                rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
            except psutil.Error:
                continue
            peak_rss = max(peak_rss, rss)

    try:
        server.wait_ready()
        script = lua_script(stack.name, stack.body, None, stack.headers)
        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        before = inserted(database)
        started = time.monotonic()
        seconds = threading.Thread(target=sample_seconds, args=(started, before), daemon=True)
        seconds.start()
        result = wrk(server.url, script, args.seconds, args.connections)
        loaded_s = time.monotonic() - started
        loaded.set()
        seconds.join()
        during = inserted(database) - before
        acknowledged = (result["requests"] - result["errors"]) * BATCH_ROWS
        drain_started = time.monotonic()
        while inserted(database) - before < acknowledged:
            if time.monotonic() - drain_started > 600:
                break
            time.sleep(0.2)
        drained_s = time.monotonic() - drain_started
        sampling.set()
        written = inserted(database) - before
        give_the_demo_a_profile(database)
        drift_s, drift_rows = drift_seconds(f"http://127.0.0.1:{port}", stack.headers)
        fresh_s, million_s, million_rows = monitoring_seconds(
            f"http://127.0.0.1:{port}", stack.headers, database)  # fmt: skip
    finally:
        server.stop()
    results = {
        "machine": machine(), "seconds": args.seconds, "connections": args.connections,
        "acknowledged_rows_per_s": acknowledged / loaded_s,
        "written_rows_per_s_during_load": during / loaded_s,
        "backlog_rows_at_stop": acknowledged - during, "drain_s": drained_s,
        "refused_503": result["errors"], "peak_rss_mib": peak_rss / 2**20,
        "acknowledged_rows": acknowledged, "written_rows": written,
        "drift_s": drift_s, "drift_rows": drift_rows, "monitoring_1m_s": million_s,
        "monitoring_1m_fresh_s": fresh_s,
        "monitoring_1m_rows": million_rows, "per_second": per_second,
    }  # fmt: skip
    chart(per_second, RESULTS / "sustained.png")
    ratio = results["written_rows_per_s_during_load"] / max(results["acknowledged_rows_per_s"], 1)
    (RESULTS / "sustained.json").write_text(json.dumps(results, indent=2))
    text = "\n".join([
        "# Sustained batch load on the decision log",
        "",
        f"Machine: {machine()}, {platform.platform()}. ferroscore (`durable`) pinned to core "
        f"{SERVER_CORE}, wrk to core {CLIENT_CORE}, {args.connections} connections sending "
        f"batches of {BATCH_ROWS} rows for {args.seconds} s; PostgreSQL on wrk's core. "
        "Command: `make bench`.",
        "",
        "| acknowledged rows/s | rows/s into PostgreSQL during the load | backlog at stop "
        "(rows) | drained in (s) | 503s (spool full) | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {results['acknowledged_rows_per_s']:,.0f} | "
        f"{results['written_rows_per_s_during_load']:,.0f} | "
        f"{results['backlog_rows_at_stop']:,.0f} | {drained_s:.1f} | {result['errors']:.0f} | "
        f"{results['peak_rss_mib']:.0f} |",
        "",
        (f"Every acknowledged row reached PostgreSQL: {written:,} written of "
         f"{acknowledged:,.0f} acknowledged (wrk does not count the answers in flight when it "
         "stops). The backlog waits on disk in the spool, not in memory."
         if written >= acknowledged else
         f"MISSING: {written:,} written of {acknowledged:,.0f} acknowledged after "
         f"{drained_s:.0f} s."),
        "",
        "Targets (reported, not asserted):",
        "",
        f"- rows into PostgreSQL during the load ≥ 0.9x the rows acknowledged: {ratio:.2f}x — "
        + ("met" if ratio >= 0.9 else "NOT met"),
        f"- monitoring over a million logged rows (`GET /v1/models/breast-cancer/monitoring` "
        f"over the log's last {million_rows:,}: PSI of 30 features and the score, in SQL, after "
        f"`VACUUM (ANALYZE)`) ≤ 1 s: {million_s:.2f} s — "
        + ("met" if million_s <= 1 else "NOT met")
        + f"; on the rows as just written, before any vacuum: {fresh_s:.2f} s",
        f"- and `ferroscore decisions drift breast-cancer --days 1` over the whole run's "
        f"{drift_rows:,} rows, the command's own start included: {drift_s:.2f} s",
        "",
        "Once a second of the load: the rows PostgreSQL had taken, at what rate, and the "
        "spool's depth (decisions acknowledged, on disk, not yet in PostgreSQL).",
        "",
        "| second | rows in PostgreSQL | rows/s into PostgreSQL | spool depth (MiB) |",
        "|---:|---:|---:|---:|",
        *(f"| {s['t']:.0f} | {s['rows_in_postgres']:,.0f} | {s['rows_per_s']:,.0f} | "
          f"{s['spool_mib']:.1f} |" for s in per_second),
        "",
        "![rows into PostgreSQL and spool depth, once a second](sustained.png)",
    ])  # fmt: skip
    (RESULTS / "sustained.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
