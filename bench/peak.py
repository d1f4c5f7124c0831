"""The peak-throughput runner: every stack in bench/stacks.py under wrk on loopback, server
pinned to core 0 and wrk to core 1, stacks alternated over several rounds. Records requests/s,
p50/p99 latency, and the server's CPU time per request read from /proc (the steadiest figure
on a noisy machine); then each stack again at half of ferroscore's peak rate, for latency
under a realistic load. Writes bench/results/latest.{md,json,png}. Run: make bench."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import hooked
import psutil
from stacks import (
    BATCH_ROWS,
    Server,
    Stack,
    batch_body,
    bench_database,
    bench_key,
    ferroscore_stack,
    free_port,
    mlserver_stack,
    stacks,
)
from timing import RESULTS, demo_endpoint, machine, per_call_us

SERVER_CORE, CLIENT_CORE = 0, 1
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def lua_script(
    name: str, body: bytes, rate_per_connection: float | None, headers: dict[str, str]
) -> Path:
    """A wrk script that POSTs a stack's request body with its headers; with a rate, each
    connection waits between requests so the offered load is fixed (open enough below
    saturation)."""
    text = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    for name_, value in headers.items():
        text += f"wrk.headers[{json.dumps(name_)}] = {json.dumps(value)}\n"
    if rate_per_connection:
        text += f"function delay() return {1000.0 / rate_per_connection:.3f} end\n"
    path = RESULTS / f"{name}{'-rate' if rate_per_connection else ''}.lua"
    path.write_text(text)
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the server process and its children."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            str(CLIENT_CORE),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out, re.M)
        result[f"p{pct}_ms"] = float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


def measure(server: Server, script: Path, seconds: int, connections: int) -> dict[str, float]:
    before = cpu_seconds(server.proc.pid)
    r = wrk(server.url, script, seconds, connections)
    r["cpu_us_per_request"] = (cpu_seconds(server.proc.pid) - before) / max(r["requests"], 1) * 1e6
    return r


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    peak, half = results["peak"], results["half"]
    ours = peak["ferroscore"]["rps"]
    lines = [
        "# HTTP benchmark: ferroscore against the stacks people deploy",
        "",
        f"Machine: {machine()}, {platform.platform()}. Server pinned to core {SERVER_CORE}, "
        f"wrk to core {CLIENT_CORE}, {args.connections} connections, {args.seconds} s per run, "
        f"medians of {args.rounds} alternated rounds. Command: `make bench`.",
        "",
        "| stack | requests/s | p50 (ms) | p99 (ms) | server CPU per request (µs) | "
        "ferroscore's requests/s ÷ this | p99 at half ferroscore's peak (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in sorted(peak.items(), key=lambda kv: -kv[1]["rps"]):
        h = half.get(name, {}).get("p99_ms", float("nan"))
        lines.append(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['cpu_us_per_request']:.0f} | {ours / r['rps']:.2f}x | {h:.2f} |"
        )
    lines += [
        "",
        "Targets (reported, not asserted), with every guarantee on (`ferroscore`: the "
        "durable log, a key, metrics):",
        "",
    ]

    def target(text: str, value: float, goal: float, unit: str = "x") -> None:
        met = value >= goal if unit == "x" else value <= goal
        lines.append(f"- {text}: {value:.2f}{unit} — {'met' if met else 'NOT met'}")

    for name, goal, text in [
        ("ferroscore-off", 0.85, "≥ 0.85x ferroscore with its decision log off"),
        ("robyn-constant", 1.0, "≥ 1.0x Robyn's constant-body hello"),
        ("robyn-orjson-onnxruntime", 2.5, "≥ 2.5x plain Robyn + orjson + onnxruntime"),
        ("litestar-granian-onnxruntime", 5.0, "≥ 5x Litestar + msgspec + Granian + onnxruntime"),
        ("fastapi-uvicorn-xgboost", 20.0, "≥ 20x FastAPI + xgboost"),
    ]:
        if name in peak:
            target(text, ours / peak[name]["rps"], goal)
    if "ferroscore-off" in peak and "robyn-constant-kept" in peak:
        target("log off ≥ 0.8x Robyn's hello with its thread state kept",
               peak["ferroscore-off"]["rps"] / peak["robyn-constant-kept"]["rps"], 0.8)  # fmt: skip
    if "ferroscore" in half and "robyn-constant" in half:
        p99_ratio = half["ferroscore"]["p99_ms"] / half["robyn-constant"]["p99_ms"]
        target("p99 at half of ferroscore's peak ≤ 1.5x Robyn hello's p99 at the same rate",
               p99_ratio, 1.5, "x (≤)")  # fmt: skip
    if "ferroscore-hooks" in peak:
        target("a trivial async enrichment and decision hook ≥ 0.9x the same server without",
               peak["ferroscore-hooks"]["rps"] / ours, 0.9)  # fmt: skip
    if "ferroscore-hooks-sync" in peak and "ferroscore-hooks" in peak:
        added = (peak["ferroscore-hooks-sync"]["cpu_us_per_request"]
                 - peak["ferroscore-hooks"]["cpu_us_per_request"]) / 2  # fmt: skip
        target("a trivial sync hook ≤ +40 µs server CPU per request against an async one",
               added, 40.0, " µs")  # fmt: skip
    # What a feature costs: the stack with it against the stack without it, same run.
    costs = [
        ("ferroscore-hooks", "ferroscore", "hooks (ferroscore-hooks: a trivial async "
         "enrichment hook and a trivial async decision hook)", "target ≥ 0.9x"),
        ("ferroscore-hooks-sync", "ferroscore-hooks", "two sync hooks instead of async ones "
         "(ferroscore-hooks-sync: each on the hooks' thread pool)", "target ≤ +40 µs a hook"),
        ("ferroscore", "ferroscore-nokeys", "an API key (ferroscore sends one; "
         "ferroscore-nokeys runs with FERROSCORE_AUTH=false)",
         "target ≤ 2 µs; the in-process figure is in bench/results/auth.md"),
        ("ferroscore", "ferroscore-nometrics", "metrics (ferroscore-nometrics runs with "
         "FERROSCORE_METRICS=false)", "no target"),
        ("ferroscore-accesslog", "ferroscore", "the access log (ferroscore-accesslog: a JSON "
         "line per request, at INFO; ferroscore runs at WARNING)", "no target"),
        ("ferroscore-front", "ferroscore", "the nginx front (ferroscore-front: deploy/nginx "
         "as `make serve-prod` runs it, nginx on the server's core too)", "no target"),
    ]  # fmt: skip
    for with_it, without, what, target in costs:
        if with_it in peak and without in peak:
            a, b = peak[with_it], peak[without]
            added = a["cpu_us_per_request"] - b["cpu_us_per_request"]
            lines.append(
                f"- What {what} costs: {a['rps'] / b['rps']:.2f}x the requests/s without it, "
                f"{added:+.1f} µs server CPU per request, p99 {a['p99_ms']:.2f} ms against "
                f"{b['p99_ms']:.2f} ms ({target})"
            )
    lines += decision_log_report(results)
    lines += [
        "",
        "ferroscore runs with its decision log on (`durable`: spooled and fsynced before each "
        "answer), moved to a PostgreSQL the runner starts beside it (not on the server's "
        "core; its CPU is not in the server column). The batch stacks send "
        f"{BATCH_ROWS} rows per request. "
        "mlserver-xgboost answers its own Open Inference Protocol request (the same 30 numbers "
        "as a [1, 30] FP32 tensor). Failed requests per stack: "
        + ", ".join(f"{k} {int(v['errors'])}" for k, v in peak.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def in_process_rows_per_s(quick: bool) -> float:
    """Rows/s of parse + validate + score of the batch stacks' body, in this process on the
    server's core (the servers stopped): what the HTTP path is measured against."""
    endpoint, body = demo_endpoint(), batch_body()
    os.sched_setaffinity(0, {SERVER_CORE})
    try:
        us = per_call_us(lambda: endpoint.score(body), 20 if quick else 200, 3 if quick else 7)
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return BATCH_ROWS / us * 1e6


def decision_log_report(results: dict[str, Any]) -> list[str]:
    """The decision log's modes side by side, and its targets."""
    peak = results["peak"]
    modes = [("durable (ferroscore: the default)", "ferroscore"),
             ("buffered", "ferroscore-buffered"), ("off", "ferroscore-off")]  # fmt: skip
    modes = [(label, name) for label, name in modes if name in peak]
    if "ferroscore-off" not in peak or "ferroscore" not in peak:
        return []
    off = peak["ferroscore-off"]
    lines = ["", "## The decision log: off, buffered, durable", "",
             "| mode | requests/s | server CPU per request (µs) | ÷ off | p99 (ms) |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for label, name in modes:
        r = peak[name]
        lines.append(f"| {label} | {r['rps']:,.0f} | {r['cpu_us_per_request']:.0f} | "
                     f"{r['rps'] / off['rps']:.2f}x | {r['p99_ms']:.2f} |")  # fmt: skip
    durable = peak["ferroscore"]["rps"]
    lines += ["", "Targets (reported, not asserted):", ""]

    def target(text: str, value: float, goal: float) -> None:
        lines.append(f"- {text}: {value:.2f}x — {'met' if value >= goal else 'NOT met'}")

    target("durable within 15% of off (≥ 0.85x)", durable / off["rps"], 0.85)
    batch = f"ferroscore-batch{BATCH_ROWS}"
    if batch in peak and f"{batch}-off" in peak:
        inproc = results["in_process_batch_rows_per_s"]
        on_rows = peak[batch]["rps"] * BATCH_ROWS
        off_rows = peak[f"{batch}-off"]["rps"] * BATCH_ROWS
        lines.append(f"- Batches of {BATCH_ROWS} rows over HTTP: {on_rows:,.0f} rows/s durable, "
                     f"{off_rows:,.0f} rows/s off; parse + validate + score in process on the "
                     f"same core: {inproc:,.0f} rows/s")  # fmt: skip
        target(f"batches of {BATCH_ROWS}, log on, ≥ 50% of the in-process rows/s",
               on_rows / inproc, 0.5)  # fmt: skip
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak = results["peak"]
    names = sorted(peak, key=lambda n: -peak[n]["rps"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.barh(names, [peak[n]["rps"] for n in names], color="#3b6ea5")
    a.set_xlabel("requests/s (higher is better)")
    a.invert_yaxis()
    b.barh(names, [peak[n]["p99_ms"] for n in names], color="#a53b3b", label="p99 at peak")
    b.barh(names, [peak[n]["p50_ms"] for n in names], color="#e0a0a0", label="p50 at peak")
    b.set_xlabel("latency (ms, lower is better)")
    b.set_yticks([])
    b.invert_yaxis()
    b.legend()
    fig.suptitle("Single-record scoring, one server core")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def before_stack(
    python: Path, port: int, database_url: str, dbname: str = "ferroscore_before"
) -> Stack:
    """Another checkout's ferroscore, on a database of its own (its migrations may differ)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname}".encode())
        conn.execute(f"CREATE DATABASE {dbname}".encode())
    params = {**conninfo_to_dict(database_url), "dbname": dbname}
    return ferroscore_stack("ferroscore-before", python, port, make_conninfo(**params),
                            python.resolve().parents[2])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", nargs="*", help="stack names to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="2 s, 1 round: a smoke run")
    parser.add_argument(
        "--no-mlserver", action="store_true", help="skip MLServer (it installs into its own venv)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="the python of another ferroscore checkout's venv: also run it, as"
        " 'ferroscore-before', to measure a change side by side",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2, 1
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the runner pins server and client to different cores: needs 2")
    RESULTS.mkdir(exist_ok=True)
    names = [
        "ferroscore",
        "ferroscore-nokeys",
        "ferroscore-nometrics",
        "ferroscore-accesslog",
        "ferroscore-front",
        "ferroscore-hooks",
        "ferroscore-hooks-sync",
        "ferroscore-buffered",
        "ferroscore-off",
        f"ferroscore-batch{BATCH_ROWS}",
        f"ferroscore-batch{BATCH_ROWS}-off",
        "robyn-constant",
        "robyn-constant-kept",
        "robyn-orjson-onnxruntime",
        "litestar-granian-onnxruntime",
        "fastapi-uvicorn-xgboost",
    ]
    ports = {n: free_port() for n in names}
    database = bench_database(CLIENT_CORE)
    hooked.register(database)
    chosen = [s for s in stacks(ports, database) if not args.only or s.name in args.only]
    if args.before:
        ports["ferroscore-before"] = free_port()
        chosen.insert(1, before_stack(args.before, ports["ferroscore-before"], database))
    if not (args.quick or args.no_mlserver or (args.only and "mlserver-xgboost" not in args.only)):
        ports["mlserver-xgboost"] = free_port()
        extra = mlserver_stack(ports["mlserver-xgboost"], RESULTS)
        if extra is None:
            print("MLServer does not install here; left out", flush=True)
        else:
            chosen.append(extra)
    servers: list[Server] = []
    try:
        for s in chosen:
            servers.append(Server(s, ports[s.name], SERVER_CORE, RESULTS))
        for srv in servers:
            before = srv.stack.name == "ferroscore-before"
            srv.wait_ready(keyless=before)
            if before:  # its own key, on the database it migrated
                srv.stack.headers.update(bench_key(srv.stack.env["DATABASE_URL"]))
        scripts = {
            srv.stack.name: lua_script(srv.stack.name, srv.stack.body, None, srv.stack.headers)
            for srv in servers
        }
        runs: dict[str, list[dict[str, float]]] = {s.stack.name: [] for s in servers}
        for r in range(args.rounds):
            order = servers[r % len(servers) :] + servers[: r % len(servers)]
            for srv in order:
                script = scripts[srv.stack.name]
                wrk(srv.url, script, 1, args.connections)  # warm-up
                runs[srv.stack.name].append(measure(srv, script, args.seconds, args.connections))
                print(
                    f"round {r + 1} {srv.stack.name}: {runs[srv.stack.name][-1]['rps']:,.0f} req/s",
                    flush=True,
                )
        peak = {name: median_of(rs) for name, rs in runs.items()}
        # Latency at half of ferroscore's peak rate, the same offered load for every stack.
        half_rate = peak.get("ferroscore", next(iter(peak.values())))["rps"] / 2
        rate = half_rate / args.connections
        half = {
            srv.stack.name: measure(
                srv,
                lua_script(srv.stack.name, srv.stack.body, rate, srv.stack.headers),
                args.seconds,
                args.connections,
            )
            for srv in servers
        }
    finally:
        for srv in servers:
            srv.stop()
    results = {"peak": peak, "half": half, "half_rate": half_rate, "machine": machine(),
               "in_process_batch_rows_per_s": in_process_rows_per_s(args.quick)}  # fmt: skip
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    text = report(results, args)
    (RESULTS / "latest.md").write_text(text + "\n![throughput and latency](latest.png)\n")
    chart(results, RESULTS / "latest.png")
    print(text)


if __name__ == "__main__":
    main()
