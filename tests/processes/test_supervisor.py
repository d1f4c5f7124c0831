"""The supervisor with real processes on loopback: a killed serving process is back within a
second while the other keeps serving; SIGTERM under 32 clients drains (readiness 503 at
once, every request sent before the signal answered in full, every answered decision
written, exit within the grace period); a frozen process and one whose only worker is stuck
are replaced; a crash loop backs off."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from support import Load, ServerProcess, children, create_key, serving

pytestmark = pytest.mark.e2e

#: The supervisor's line when a replacement serves: how long the slot had no process.
BACK = re.compile(r"is serving, ([\d.]+) s after its predecessor died")
CONNECTION_ERRORS = {"ConnectionResetError", "RemoteDisconnected", "BrokenPipeError",
                     "ConnectionRefusedError", "IncompleteRead"}  # fmt: skip


def _wait_logged(server: ServerProcess, pattern: str | re.Pattern[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, server.log())
        if found:
            return found.group(0)
        time.sleep(0.02)
    raise AssertionError(f"{pattern!r} not logged within {timeout} s:\n{server.log()[-4000:]}")


def _wait_serving(server: ServerProcess, processes: int = 2) -> list[int]:
    """The serving processes, once each has beaten on the board (answers, not only binds)."""
    for slot in range(processes):
        _wait_logged(server, rf"\(slot {slot}\) is serving", timeout=10)
    return children(server.proc.pid)


def _metric(server: ServerProcess, database_url: str, name: str) -> float:
    token = create_key(database_url, scopes=("metrics",))
    request = urllib.request.Request(f"{server.url}/metrics",
                                     headers={"authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as r:
        text = r.read().decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "FERROSCORE_PROCESSES": "2",
            "FERROSCORE_ACCESS_LOG": "false", **extra}  # fmt: skip


def test_a_killed_serving_process_is_back_within_a_second(
    module_database: str, tmp_path: Path
) -> None:
    with serving(_env(module_database), tmp_path / "server.log") as server:
        first = _wait_serving(server)
        with Load(server.url, 8, server.headers) as load:
            load.wait_answers(300)
            killed = time.monotonic()
            os.kill(first[0], signal.SIGKILL)
            back = _wait_logged(server, BACK, timeout=5)
            load.wait_answers(300)
        assert float(BACK.search(back).group(1)) < 1.0, back  # type: ignore[union-attr]
        now = children(server.proc.pid)
        assert len(now) == 2
        assert first[0] not in now
        assert first[1] in now
        assert "was killed by SIGKILL" in server.log()
        # The service went on: only the dead process's connections failed, no 5xx.
        after = load.results(since=killed)
        failed = {k: n for k, n in after.items() if k != 200}
        assert set(failed) <= CONNECTION_ERRORS, after
        assert sum(failed.values()) <= 16, after
        assert after[200] >= 300, after
        assert _metric(server, module_database, "ferroscore_process_restarts_total") == 1.0


def _readiness_within(server: ServerProcess, seconds: float) -> tuple[int, dict[str, str]]:
    """The first readiness answer that is not 200, or the last one after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = server.request("GET", "/health/ready")
        if answer[0] != 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)


def test_sigterm_drains_every_request_sent_before_it(module_database: str, tmp_path: Path) -> None:
    grace = 5
    env = _env(module_database, FERROSCORE_GRACE_S=str(grace), FERROSCORE_DRAIN_DELAY_S="1")
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        server.wait_ready()
        with Load(server.url, 32, server.headers) as load:
            load.wait_answers(1000)
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            # Readiness answers 503 as soon as the supervisor has the signal (it is
            # delivered asynchronously), while connections are still taken (the drain delay).
            ready = _readiness_within(server, 0.5)
            assert ready == (503, {"status": "draining"})
            assert server.request("GET", "/health/live")[0] == 200
            server.proc.wait(timeout=grace + 20)
            exited = time.monotonic()
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert exited - signalled < grace, f"{exited - signalled:.1f} s"
    before = load.results(until=signalled)
    assert set(before) == {200}, before
    assert before[200] >= 1000
    print(f"\nSIGTERM under 32 clients: {before[200]} requests sent before it, all answered; "
          f"after it: {dict(load.results(since=signalled))}; exit {exited - signalled:.2f} s "
          f"after the signal")  # fmt: skip
    # Every answered decision is in the database once the service has exited.
    answered = [o.request_id for o in load.outcomes if o.result == 200]
    with psycopg.connect(module_database) as conn:
        written = conn.execute(
            "SELECT count(DISTINCT request_id) FROM decisions WHERE request_id = ANY(%s)",
            (answered,),
        ).fetchone()
    assert written == (len(answered),)


def test_a_frozen_serving_process_is_replaced(module_database: str, tmp_path: Path) -> None:
    env = _env(module_database, FERROSCORE_HEALTH_TIMEOUT_S="1")
    with serving(env, tmp_path / "server.log") as server:
        frozen, other = _wait_serving(server)
        os.kill(frozen, signal.SIGSTOP)
        stopped = time.monotonic()
        _wait_logged(server, rf"serving process {frozen} \(slot 0\) has not answered its health "
                     r"check for [\d.]+ s; replacing it", timeout=5)  # fmt: skip
        _wait_logged(server, BACK, timeout=5)
        print(f"\nfrozen process replaced and its successor serving "
              f"{time.monotonic() - stopped:.2f} s after SIGSTOP")  # fmt: skip
        now = children(server.proc.pid)
        assert frozen not in now
        assert other in now
        assert len(now) == 2
        assert server.request("GET", "/health/ready")[0] == 200


HANGING_HOOKS = """
import time
from ferroscore import hooks

@hooks.route("GET", "/v1/ext/hang", budget_ms=60_000)
def hang(call, ctx):
    time.sleep(60)
"""


def test_a_process_whose_workers_are_all_stuck_is_replaced(
    module_database: str, tmp_path: Path
) -> None:
    (tmp_path / "hanging_hooks.py").write_text(textwrap.dedent(HANGING_HOOKS))
    # One worker thread, which the one hanging request holds.
    env = _env(module_database, FERROSCORE_HEALTH_TIMEOUT_S="1", FERROSCORE_HOOKS="hanging_hooks",
               FERROSCORE_WORKERS="1", PYTHONPATH=str(tmp_path))  # fmt: skip
    with serving(env, tmp_path / "server.log") as server:
        request = urllib.request.Request(f"{server.url}/v1/ext/hang", headers=server.headers)
        _replaced_while_held(server, request, r"every worker thread has been in one request")


def _replaced_while_held(server: ServerProcess, request: urllib.request.Request, why: str) -> None:
    """`request` held by the server for good: the process is replaced for `why` (logged,
    over the 1 s health timeout), its caller gets no answer, and the server serves on."""
    failed: list[object] = []

    def send() -> None:
        try:
            urllib.request.urlopen(request, timeout=30)
        except (OSError, urllib.error.URLError) as e:
            failed.append(e)

    thread = threading.Thread(target=send)
    thread.start()
    _wait_logged(server, why + r" for over 1 s", 10)
    _wait_logged(server, r"has not answered its health check for [\d.]+ s; replacing it", 5)
    _wait_logged(server, BACK, timeout=5)
    thread.join(timeout=10)
    assert failed, "the held request was answered"
    assert server.request("GET", "/health/ready")[0] == 200


BLOCKING_HOOKS = """
import time
from ferroscore import hooks

@hooks.decide("breast-cancer", budget_ms=60_000, inline=True)
def block(scored, ctx):
    if scored.rows[0].values["mean_radius"] == 999:
        time.sleep(60)  # what an inline hook must never do: every request on the loop waits
"""


def test_a_process_whose_event_loop_stops_turning_is_replaced(
    module_database: str, tmp_path: Path
) -> None:
    (tmp_path / "blocking_hooks.py").write_text(textwrap.dedent(BLOCKING_HOOKS))
    env = _env(module_database, FERROSCORE_HEALTH_TIMEOUT_S="1", FERROSCORE_HOOKS="blocking_hooks",
               PYTHONPATH=str(tmp_path))  # fmt: skip
    example = json.loads((Path(__file__).parents[2] / "python/ferroscore/demo/example.json")
                         .read_text())  # fmt: skip
    example["features"]["mean_radius"] = 999
    with serving(env, tmp_path / "server.log") as server:
        request = urllib.request.Request(
            f"{server.url}/v1/models/breast-cancer/score", json.dumps(example).encode(),
            {**server.headers, "content-type": "application/json"}, method="POST",
        )  # fmt: skip
        _replaced_while_held(server, request, r"the event loop has not turned")


#: A supervisor of one process doing `SERVE` (a statement), logging to stdout.
SUPERVISED = """
import logging, os, signal, sys, time
from ferroscore.processes.board import Board
from ferroscore.processes.supervisor import Supervisor

logging.basicConfig(level=logging.INFO, format="%(created).3f %(message)s", stream=sys.stdout)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})

def serve(slot):
    SERVE

supervisor = Supervisor(1, serve, Board(), grace_s=1, health_timeout_s=5, start_timeout_s=1)
sys.exit(supervisor.run())
"""


def _supervise(serve: str, seconds: float, log: Path) -> int:
    """Runs a supervisor whose one process does `serve` for `seconds`, then SIGTERMs it."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", SUPERVISED.replace("SERVE", serve)],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        time.sleep(seconds)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=10)


def test_a_process_that_never_serves_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "supervisor.log"
    # It never beats (a model that takes forever to load, say); SIGTERM is blocked in it,
    # as in a serving process that has not yet started its stop-signal thread.
    started = time.monotonic()
    assert _supervise("time.sleep(3600)", 4, log) == 0
    text = log.read_text()
    assert text.count("did not start serving within 1 s; replacing it") >= 2, text
    # The stop does not wait for one still starting: it has nothing to drain.
    assert time.monotonic() - started < 6


def test_a_crash_loop_backs_off(tmp_path: Path) -> None:
    log = tmp_path / "supervisor.log"
    assert _supervise("os._exit(3)", 5, log) == 0
    deaths = [float(line.split()[0]) for line in log.read_text().splitlines()
              if "exited with status 3" in line]  # fmt: skip
    gaps = [b - a for a, b in itertools.pairwise(deaths)]
    # Started again at once, then after 0.5, 1, 2 s...: 5 deaths in 5 s rather than thousands.
    assert 4 <= len(deaths) <= 6, log.read_text()
    assert gaps[0] < 0.4
    assert all(b > 1.6 * a for a, b in itertools.pairwise(gaps))
    assert "starting another in 0.5 s (2 early deaths in a row)" in log.read_text()
    print("\ncrash loop: deaths", json.dumps([round(d - deaths[0], 2) for d in deaths]))
