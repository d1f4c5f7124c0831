"""`GET /metrics` of a server with two serving processes: whichever process answers the
scrape, the counts are those of both (requests by route and status, latency, scores by
model, version and decision, validation failures by code), in the Prometheus text format."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferroscore.models.registry import DEMO_MODEL

from support import FraudModels, ServerProcess, create_key, fraud_server

pytestmark = pytest.mark.e2e

SCORE = "/v1/models/{name}/score"
EXAMPLE = (Path(__file__).parents[2] / "python/ferroscore/demo/example.json").read_bytes()


@pytest.fixture(scope="module")
def server(
    module_database: str, fraud: FraudModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("metrics")
    with fraud_server(module_database, fraud, directory, FERROSCORE_PROCESSES="2") as srv:
        yield srv


def post(server: ServerProcess, path: str, body: bytes, headers: dict[str, str]) -> int:
    """On a connection of its own, so the kernel spreads requests over both processes."""
    request = urllib.request.Request(server.url + path, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def scrape(server: ServerProcess, token: str) -> dict[tuple[str, tuple[Any, ...]], float]:
    request = urllib.request.Request(server.url + "/metrics",
                                     headers={"authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/plain; version=")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            samples[(s.name + ("|le=" + s.labels["le"] if "le" in s.labels else ""), labels)] = (
                s.value
            )
    return samples


def test_every_process_counts_and_any_scrape_adds_them_up(
    server: ServerProcess, module_database: str
) -> None:
    headers = {**server.headers, "content-type": "application/json"}
    for _ in range(30):
        assert post(server, f"/v1/models/{DEMO_MODEL}/score", EXAMPLE, headers) == 200
    bad = b'{"features": {"mean_radius": -1}}'
    for _ in range(4):
        assert post(server, f"/v1/models/{DEMO_MODEL}/score", bad, headers) == 422
    for _ in range(3):
        assert post(server, f"/v1/models/{DEMO_MODEL}/score", EXAMPLE, {}) == 401
    watcher = create_key(module_database, scopes=("metrics",))
    # The scrape names every tenant's models: another tenant's metrics key reads none of it.
    outsider = create_key(module_database, tenant="acme", scopes=("metrics",))
    request = urllib.request.Request(
        server.url + "/metrics", headers={"authorization": f"Bearer {outsider}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["code"] == "operator_only"
    # Not a scope of the test key: metrics have a scope of their own.
    assert server.request("GET", "/metrics")[0] == 403
    route = (("method", "POST"), ("route", SCORE))
    deadline = time.monotonic() + 10
    seen: list[float] = []
    while True:
        samples = scrape(server, watcher)
        ok = samples.get(("ferroscore_http_requests_total", (*route, ("status", "200"))))
        seen.append(ok or 0)
        # Twice in a row the full count: both processes' snapshots, whichever one answered.
        if seen[-2:] == [30, 30]:
            break
        assert time.monotonic() < deadline, f"requests counted: {seen}"
        time.sleep(0.3)
    assert samples[("ferroscore_http_requests_total", (*route, ("status", "422")))] == 4
    assert samples[("ferroscore_http_requests_total", (*route, ("status", "401")))] == 3
    assert samples[("ferroscore_http_request_duration_seconds_count",
                    (*route, ("status", "200")))] == 30  # fmt: skip
    assert samples[("ferroscore_validation_failures_total", (("code", "minimum"),))] == 4
    demo = (("model", DEMO_MODEL), ("role", "champion"), ("tenant", "default"),
            ("version", "1"))  # fmt: skip
    assert samples[("ferroscore_scored_rows_total", demo)] == 30
    assert samples[("ferroscore_score_count", demo)] == 30
    # The demo row scores 0.0049: all 30 in the first bucket, below 0.01.
    assert samples[("ferroscore_score_bucket|le=0.01", demo)] == 30
    assert abs(samples[("ferroscore_score_sum", demo)] - 30 * 0.004907298367470503) < 1e-9
    assert samples[("ferroscore_serving_processes", ())] == 2
    assert samples[("ferroscore_db_pool_connections", ())] >= 2
    fraud = (("model", "card-fraud"), ("role", "champion"), ("tenant", "default"),
             ("version", "1"))  # fmt: skip
    assert samples[("ferroscore_scored_rows_total", fraud)] == 0
    decline = tuple(sorted((*fraud, ("decision", "decline"))))
    assert samples[("ferroscore_decisions_total", decline)] == 0
