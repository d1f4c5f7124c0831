"""Liveness and readiness over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable

from support import ServerProcess


def test_live_and_ready(server: ServerProcess) -> None:
    assert server.request("GET", "/health/live") == (200, {"status": "live"})
    assert server.request("GET", "/health/ready") == (
        200,
        {"status": "ready", "models": 1},
    )


def test_the_score_route_skips_robyns_python_wrapper(server: ServerProcess) -> None:
    # adapters/robyn.py falls back to the wrapper, with this warning, if its internals moved.
    assert "route internals changed" not in server.log()


def test_robyn_calls_us_on_long_lived_threads(
    module_database: str, spawn_server: Callable[..., ServerProcess]
) -> None:
    # The adapter keeps each worker thread's Python state alive, once per thread; were Robyn
    # to run requests on fresh threads, every request would keep one more, and this count
    # would grow with the requests instead of staying at the number of workers.
    server = spawn_server({"DATABASE_URL": module_database, "FERROSCORE_WORKERS": "2",
                           "FERROSCORE_LOG_LEVEL": "DEBUG"})  # fmt: skip
    server.wait_ready()

    def client() -> None:
        for _ in range(100):
            assert server.request("GET", "/health/live")[0] == 200

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kept = server.log().count("keeping the Python thread state of thread")
    assert 1 <= kept <= 2, server.log()
