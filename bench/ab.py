"""A/B of ferroscore builds or settings on the HTTP path: each variant is `name=python` (a
venv's python, e.g. another checkout's) with optional `KEY=VALUE` environment after a colon;
all share one PostgreSQL, are alternated over rounds, pinned as in peak.py. Prints the
median requests/s and server CPU per request of each, and each one's ratio to the first.

    python bench/ab.py before=/tmp/base/.venv/bin/python after=.venv/bin/python
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from peak import SERVER_CORE, before_stack, lua_script, measure, wrk
from stacks import Server, bench_database, bench_key, free_port
from timing import RESULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+", help="name=python[:KEY=VALUE,...]")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    database = bench_database()
    servers = []
    try:
        for i, variant in enumerate(args.variants):
            name, _, rest = variant.partition("=")
            python, _, extra = rest.partition(":")
            port = free_port()
            stack = before_stack(Path(python), port, database, f"ab_{i}")
            env = dict(kv.split("=", 1) for kv in extra.split(",") if kv)
            stack = stack.__class__(name, stack.argv, stack.cwd, {**stack.env, **env})
            servers.append(Server(stack, port, SERVER_CORE, RESULTS))
        for srv in servers:
            srv.wait_ready(keyless=True)
        # Each variant's own key, on the database it migrated (none before keys existed).
        scripts = {
            srv.stack.name: lua_script(f"ab-{i}", srv.stack.body, None,
                                       bench_key(srv.stack.env["DATABASE_URL"]))
            for i, srv in enumerate(servers)
        }  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {s.stack.name: [] for s in servers}
        for r in range(args.rounds):
            for srv in servers[r % len(servers) :] + servers[: r % len(servers)]:
                script = scripts[srv.stack.name]
                wrk(srv.url, script, 1, args.connections)
                runs[srv.stack.name].append(measure(srv, script, args.seconds, args.connections))
    finally:
        for srv in servers:
            srv.stop()
    first = None
    for name, rs in runs.items():
        rps = statistics.median(r["rps"] for r in rs)
        cpu = statistics.median(r["cpu_us_per_request"] for r in rs)
        first = first or (rps, cpu)
        print(f"{name:>16}: {rps:9,.0f} req/s ({rps / first[0]:.3f}x)  "
              f"{cpu:5.1f} µs CPU/request ({cpu / first[1]:.3f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
