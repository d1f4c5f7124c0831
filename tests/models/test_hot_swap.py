"""Activations reach every serving process within a second while clients score without
pause: 2 processes, 4 clients, 20 activations back and forth, zero non-2xx responses, and no
response names the old version more than 1 s after its switch."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from support import ServerProcess

pytestmark = pytest.mark.e2e

SWITCHES = 20
SPACING_S = 1.5
CLIENTS = 4


def test_activations_reach_every_process_within_a_second(
    spawn_server: Callable[..., ServerProcess], module_database: str, demo_model_bytes: bytes,
    demo_schema: str,
) -> None:  # fmt: skip
    server = spawn_server({"DATABASE_URL": module_database, "FERROSCORE_PROCESSES": "2"})
    server.wait_ready()
    for _ in range(2):
        status, _ = server.upload("/v1/models/swap/versions", {"model": demo_model_bytes},
                                  {"schema": demo_schema, "force": "true"})  # fmt: skip
        assert status == 201
    assert server.request("POST", "/v1/models/swap/versions/1/activate")[0] == 200
    time.sleep(1.5)
    body = (Path(__file__).parents[2] / "python/ferroscore/demo/example.json").read_bytes()
    url = f"{server.url}/v1/models/swap/score"
    seen: list[tuple[float, float, int, int]] = []  # (sent at, answered at, status, version)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            request = urllib.request.Request(
                url, body, {"content-type": "application/json", **server.headers}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as r:
                    version = json.loads(r.read())["version"]
                    seen.append((sent, time.monotonic(), r.status, version))
            except urllib.error.HTTPError as e:
                seen.append((sent, time.monotonic(), e.code, 0))
            except OSError:
                seen.append((sent, time.monotonic(), 0, 0))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    # (asked at, done at, version): between asking and done, either version is right.
    switches: list[tuple[float, float, int]] = []
    try:
        for i in range(SWITCHES):
            time.sleep(SPACING_S)
            version = 2 if i % 2 == 0 else 1
            asked = time.monotonic()
            status, _ = server.request("POST", f"/v1/models/swap/versions/{version}/activate")
            assert status == 200
            switches.append((asked, time.monotonic(), version))
        time.sleep(SPACING_S)
    finally:
        stop.set()
        for t in threads:
            t.join()

    statuses = [s for _, _, s, _ in seen]
    assert len(seen) > 200, "the clients kept scoring"
    assert all(s == 200 for s in statuses), f"non-2xx: {[s for s in statuses if s != 200][:5]}"
    # A response whose whole request lies between one switch's completion and the next
    # switch's start can only name that switch's version; one sent more than 1 s after the
    # switch and naming another is late.
    late, lag = [], 0.0
    for k, (_, at, version) in enumerate(switches):
        until = switches[k + 1][0] if k + 1 < len(switches) else float("inf")
        old = [
            sent - at for sent, done, _, v in seen if at < sent and done < until and v != version
        ]
        lag = max([lag, *old])
        late += [d for d in old if d > 1.0]
    print(f"{len(seen)} responses, {SWITCHES} switches, slowest switch {lag * 1000:.0f} ms")
    assert late == [], f"old versions served more than 1 s after a switch: {late[:5]}"
