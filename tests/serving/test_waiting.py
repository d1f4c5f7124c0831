"""Requests that wait hold no thread: with one worker thread, requests whose async decision
hook awaits (a sleep, a query through `ctx.connection()`) all wait on the serving process's
event loop at once, and so do their group commits; an async hook past its budget is
cancelled, and its request answered 503 with its decision logged."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import psycopg
import pytest

from ferroscore.models.registry import DEMO_MODEL

from support import ServerProcess, serving

HOOKS = """
    import asyncio
    import os

    from ferroscore.hooks import Context, Outcome, Scored, decide


    @decide("breast-cancer", budget_ms=1000)
    async def waits(scored: Scored, ctx: Context) -> Outcome:
        if scored.rows[0].values["mean_radius"] == 1:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                with open(os.environ["CANCELLED"], "w") as f:
                    f.write(ctx.request_id)
                raise
        await asyncio.sleep(0.3)
        async with ctx.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM decisions")
            (logged,) = await cur.fetchone()
        return Outcome(extra={"logged_before": logged, "pid": os.getpid()})
"""
EXAMPLE = json.loads(resources.files("ferroscore.demo").joinpath("example.json").read_text())
CLIENTS = 40


@pytest.fixture(scope="module")
def server(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, Path]]:
    directory = tmp_path_factory.mktemp("waiting")
    (directory / "waiting_hooks.py").write_text(textwrap.dedent(HOOKS))
    cancelled = directory / "cancelled"
    env = {"DATABASE_URL": module_database, "FERROSCORE_HOOKS": "waiting_hooks",
           "FERROSCORE_DECISION_FLUSH_MS": "20", "PYTHONPATH": str(directory),
           "CANCELLED": str(cancelled)}  # fmt: skip
    with serving(env, directory / "server.log") as srv:
        yield srv, cancelled


def _score(server: ServerProcess, features: dict[str, float]) -> tuple[int, dict[str, object]]:
    body = json.dumps({"features": features}).encode()
    return server.request("POST", f"/v1/models/{DEMO_MODEL}/score", body)


def test_requests_wait_on_the_loop_not_on_threads(server: tuple[ServerProcess, Path]) -> None:
    """40 requests whose hook waits 0.3 s, on one worker thread: one after the other they
    would take 12 s; waiting together on the loop, about 0.3 s."""
    srv, _ = server
    answers: list[tuple[int, dict[str, object]]] = []
    lock = threading.Lock()

    def client() -> None:
        got = _score(srv, EXAMPLE["features"])
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    took = time.monotonic() - started
    assert [status for status, _ in answers] == [200] * CLIENTS, answers[:3]
    assert all("logged_before" in a["extensions"] for _, a in answers)  # type: ignore[operator]
    assert took < CLIENTS * 0.3 / 2, f"{CLIENTS} waits of 0.3 s took {took:.2f} s"
    print(f"\n{CLIENTS} requests, each awaiting 0.3 s and a query, one worker thread: {took:.2f} s")


def test_an_async_hook_past_its_budget_is_cancelled(
    server: tuple[ServerProcess, Path], module_database: str
) -> None:
    srv, cancelled = server
    status, answer = _score(srv, {**EXAMPLE["features"], "mean_radius": 1})
    assert (status, answer["code"]) == (503, "hook_timeout"), answer
    deadline = time.monotonic() + 5
    while not cancelled.exists():
        assert time.monotonic() < deadline, "the hook was not cancelled"
        time.sleep(0.02)
    request_id = cancelled.read_text()
    # Scored before its decision hook ran over: the decision is logged.
    while True:
        with psycopg.connect(module_database) as conn:
            rows = conn.execute("SELECT count(*) FROM decisions WHERE request_id = %s",
                                (request_id,)).fetchone()  # fmt: skip
        if rows == (1,) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert rows == (1,)
