"""Request ids and logs over real HTTP: every answer carries `X-Request-ID` (the caller's,
the decision's, or a new one), the log is one JSON object per line, and every answered
request, refusals included, has an access line with its request id, route, model, status,
latency, tenant and key."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferroscore.models.registry import DEMO_MODEL

from support import ServerProcess, serving

pytestmark = pytest.mark.e2e

EXAMPLE = (Path(__file__).parents[2] / "python/ferroscore/demo/example.json").read_bytes()
SCORE = f"/v1/models/{DEMO_MODEL}/score"


@pytest.fixture(scope="module")
def server(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"DATABASE_URL": module_database, "FERROSCORE_LOG_FORMAT": "json"}
    with serving(env, tmp_path_factory.mktemp("logs") / "server.log") as srv:
        yield srv


def send(server: ServerProcess, body: bytes, headers: dict[str, str]) -> tuple[int, str, Any]:
    request = urllib.request.Request(server.url + SCORE, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers["x-request-id"], json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers["x-request-id"], json.loads(e.read())


def logged(server: ServerProcess, request_id: str) -> dict[str, Any]:
    """The access line of a request, once the access log's thread has written it."""
    deadline = time.monotonic() + 5
    while True:
        for line in server.log().splitlines():
            if line.startswith("{") and f'"request_id":"{request_id}"' in line:
                entry: dict[str, Any] = json.loads(line)
                if entry["logger"] == "ferroscore.access":
                    return entry
        assert time.monotonic() < deadline, f"no access line for {request_id}"
        time.sleep(0.05)


def test_request_ids_are_echoed_and_every_request_has_an_access_line(
    server: ServerProcess,
) -> None:
    key = server.headers
    status, echoed, answer = send(server, EXAMPLE, {**key, "x-request-id": "checkout-42"})
    assert (status, echoed) == (200, "checkout-42")
    line = logged(server, "checkout-42")
    assert {k: line[k] for k in ("method", "route", "status", "model", "tenant")} == {
        "method": "POST", "route": "/v1/models/{name}/score", "status": 200,
        "model": DEMO_MODEL, "tenant": "default"}  # fmt: skip
    assert line["key_id"] == server.key.split("_")[1]  # type: ignore[union-attr]
    assert 0 < line["latency_ms"] < 5000
    # Without one, the decision's id: the same in the body, the header and the log.
    status, echoed, answer = send(server, EXAMPLE, key)
    assert (status, echoed) == (200, answer["request_id"])
    logged(server, echoed)
    # Refusals too, each with an id of its own.
    status, echoed, problem = send(server, b'{"features": {"mean_radius": -1}}', key)
    assert (status, problem["code"]) == (422, "validation_failed")
    assert logged(server, echoed)["status"] == 422
    status, echoed, problem = send(server, EXAMPLE, {})
    assert status == 401
    assert "tenant" not in logged(server, echoed)
    # An id that is not printable ASCII, or too long, is replaced rather than echoed.
    status, echoed, _ = send(server, EXAMPLE, {**key, "x-request-id": "x" * 200})
    assert status == 200
    assert len(echoed) <= 128


def test_the_log_is_one_json_object_per_line(server: ServerProcess) -> None:
    lines = [ln for ln in server.log().splitlines() if ln.strip()]
    # Every line, Robyn's and the two `serve` prints for a person (the URL, a curl line).
    logs = [json.loads(ln) for ln in lines]
    assert any(
        e["logger"] == "ferroscore.models.catalog" and "serving" in e["message"] for e in logs
    )
    for entry in logs:
        assert {"time", "level", "logger", "message"} <= set(entry)
        assert "\x1b" not in entry["message"], entry  # no terminal colours
    assert any(e["logger"] == "robyn.logger" for e in logs)
    [url] = [e["url"] for e in logs if e["message"].startswith("ferroscore serving on")]
    assert url == server.url
    [curl] = [e["curl"] for e in logs if e["message"].startswith("try: curl")]
    assert curl.startswith(f"curl -s -X POST {server.url}/")
