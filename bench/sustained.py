"""Sustained batch load on the decision log: 8 wrk connections sending batches of 100 rows
for 20 s to ferroscore (`durable`, pinned to core 0; wrk on core 1). Reports the rows/s the
API acknowledged next to the rows/s that reached PostgreSQL during the load, the backlog when
the load stopped and how long it took to drain, the 503s the bounded spool answered, and the
server's peak memory. Writes bench/results/sustained.{md,json}. Run: make bench."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
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
        result = wrk(server.url, script, args.seconds, args.connections)
        loaded_s = time.monotonic() - started
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
    finally:
        server.stop()
    results = {
        "machine": machine(), "seconds": args.seconds, "connections": args.connections,
        "acknowledged_rows_per_s": acknowledged / loaded_s,
        "written_rows_per_s_during_load": during / loaded_s,
        "backlog_rows_at_stop": acknowledged - during, "drain_s": drained_s,
        "refused_503": result["errors"], "peak_rss_mib": peak_rss / 2**20,
        "acknowledged_rows": acknowledged, "written_rows": written,
    }  # fmt: skip
    (RESULTS / "sustained.json").write_text(json.dumps(results, indent=2))
    text = "\n".join([
        "# Sustained batch load on the decision log",
        "",
        f"Machine: {machine()}, {platform.platform()}. ferroscore (`durable`) pinned to core "
        f"{SERVER_CORE}, wrk to core {CLIENT_CORE}, {args.connections} connections sending "
        f"batches of {BATCH_ROWS} rows for {args.seconds} s; PostgreSQL beside them. "
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
    ])  # fmt: skip
    (RESULTS / "sustained.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
