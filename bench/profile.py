"""Where a ferroscore variant's server CPU goes under load: `perf record -g` on its serving
process while wrk drives it (as in peak.py: server on one core, wrk on the other), then the
share of samples by thread and in context switches (`finish_task_switch`). Each variant is
`name[:KEY=VALUE,...]`, the environment of `ferroscore serve`; perf must be installed.

    cd bench && python profile.py durable off:FERROSCORE_DECISION_LOG=off
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from peak import SERVER_CORE, before_stack, lua_script, wrk
from stacks import Server, bench_database, bench_key, free_port
from timing import RESULTS


def serving_child(pid: int) -> int:
    """The supervisor's serving process (its child that is not the embedded PostgreSQL)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    for child in map(int, found.split()):
        if "postgres" not in Path(f"/proc/{child}/cmdline").read_text():
            return child
    return pid


def shares(data: Path, sort: str) -> dict[str, float]:
    """perf's self-time share (%) of each `sort` key (comm, sym)."""
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", sort, "-q", "-g", "none"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    out: dict[str, float] = {}
    for line in report.splitlines():
        percent, _, rest = line.strip().partition("%")
        if percent:
            key = rest.strip().split("] ")[-1]
            out[key] = out.get(key, 0.0) + float(percent)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+", help="name[:KEY=VALUE,...]")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    database = bench_database()
    python = Path(sys.executable)
    for i, variant in enumerate(args.variants):
        name, _, extra = variant.partition(":")
        env = dict(kv.split("=", 1) for kv in extra.split(",") if kv)
        port = free_port()
        stack = before_stack(python, port, database, f"profile_{i}")
        stack = stack.__class__(name, stack.argv, stack.cwd, {**stack.env, **env})
        server = Server(stack, port, SERVER_CORE, RESULTS)
        data = RESULTS / f"profile-{name}.data"
        try:
            server.wait_ready(keyless=True)
            script = lua_script(f"profile-{i}", stack.body, None,
                                bench_key(stack.env["DATABASE_URL"]))  # fmt: skip
            wrk(server.url, script, 2, args.connections)  # warm up
            perf = subprocess.Popen(
                ["perf", "record", "-F", "1999", "-g", "-o", str(data),
                 "-p", str(serving_child(server.proc.pid)), "--", "sleep", str(args.seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            measured = wrk(server.url, script, args.seconds, args.connections)
            perf.wait()
        finally:
            server.stop()
        threads = shares(data, "comm")
        switching = shares(data, "sym").get("finish_task_switch.isra.0", 0.0)
        ranked = sorted(threads.items(), key=lambda kv: -kv[1])
        by_thread = ", ".join(f"{t} {p:.1f}%" for t, p in ranked)
        print(
            f"{name}: {measured['rps']:,.0f} req/s under perf; {by_thread}; "
            f"{switching:.1f}% in finish_task_switch ({data})"
        )


if __name__ == "__main__":
    main()
