"""`make bench-locust SCENARIO=single|batch|mixed`: starts ferroscore (embedded PostgreSQL,
decision log on) pinned to core 0, runs Locust headless on core 1 for a bounded time, and
writes Locust's CSV and HTML reports under bench/results/. BENCH_RATE=<per-user rate> gives the
fixed-rate mode."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict

from stacks import BENCH, Server, bench_database, free_port, stacks
from timing import RESULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scenario",
        default=os.environ.get("SCENARIO", "single"),
        choices=["single", "batch", "mixed"],
    )
    parser.add_argument("--users", type=int, default=int(os.environ.get("USERS", "20")))
    parser.add_argument("--duration", default=os.environ.get("DURATION", "30s"))
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    port = free_port()
    # Only ferroscore runs: the other stacks' ports are never bound.
    [stack] = [s for s in stacks(defaultdict(int, ferroscore=port), bench_database())
               if s.name == "ferroscore"]  # fmt: skip
    server = Server(stack, port, 0, RESULTS)
    prefix = RESULTS / f"locust-{args.scenario}"
    try:
        server.wait_ready()
        subprocess.run(
            [
                "taskset",
                "-c",
                "1",
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(BENCH / "locustfile.py"),
                "--headless",
                "-u",
                str(args.users),
                "-r",
                str(args.users),
                "-t",
                args.duration,
                "--host",
                f"http://127.0.0.1:{port}",
                "--csv",
                str(prefix),
                "--html",
                f"{prefix}.html",
                "--only-summary",
                "--stop-timeout",
                "5",
            ],
            env={**os.environ, "BENCH_SCENARIO": args.scenario},
            check=False,
            timeout=600,
        )
    finally:
        server.stop()
    print(f"reports: {prefix}_stats.csv, {prefix}.html")


if __name__ == "__main__":
    main()
