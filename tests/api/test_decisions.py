"""`GET /v1/decisions/{request_id}` over real HTTP: a batch's rows read back as they were
scored, within the caller's tenant and scope only."""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Any

from sklearn.datasets import load_breast_cancer

from ferroscore.registry import DEMO_MODEL

from support import ServerProcess, create_key

SCORE = f"/v1/models/{DEMO_MODEL}/score"
DATA = load_breast_cancer()


def _read_back(server: ServerProcess, request_id: str, **headers: str) -> tuple[int, Any]:
    """The decisions of `request_id`, once written (they are written after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        status, body = server.request("GET", f"/v1/decisions/{request_id}", headers=headers)
        if status != 404 or time.monotonic() > deadline:
            return status, body
        time.sleep(0.05)


def test_a_batch_reads_back_as_it_was_scored(server: ServerProcess) -> None:
    names = [n.replace(" ", "_") for n in DATA.feature_names]
    rows = [{"features": dict(zip(names, map(float, r), strict=True))} for r in DATA.data[:5]]
    status, scored = server.request("POST", SCORE, _json({"rows": rows}))
    assert status == 200, scored
    status, body = _read_back(server, scored["request_id"])
    assert status == 200, body
    assert body["request_id"] == scored["request_id"]
    decisions = body["decisions"]
    assert [d["row_index"] for d in decisions] == [0, 1, 2, 3, 4]
    for d, row, score in zip(decisions, rows, scored["scores"], strict=True):
        assert (d["role"], d["model"], d["version"]) == ("champion", DEMO_MODEL, 1)
        assert d["scores"] == [score]
        assert d["features"] == row["features"]
        assert d["created_at"].endswith("+00:00")


def test_only_the_callers_tenant_and_scope_read_it(
    server: ServerProcess, database_url: str
) -> None:
    status, scored = server.request("POST", SCORE, _example())
    assert status == 200
    assert _read_back(server, scored["request_id"])[0] == 200
    path = f"/v1/decisions/{scored['request_id']}"
    other = create_key(database_url, tenant="elsewhere", scopes=("read",))
    status, body = server.request("GET", path, headers={"authorization": f"Bearer {other}"})
    assert (status, body["code"]) == (404, "not_found")
    scorer = create_key(database_url, scopes=("score",))
    status, body = server.request("GET", path, headers={"authorization": f"Bearer {scorer}"})
    assert (status, body["code"]) == (403, "insufficient_scope")
    status, body = server.request("GET", path, headers={"authorization": ""})
    assert status == 401


def test_an_unknown_request_id_is_a_404(server: ServerProcess) -> None:
    status, body = server.request("GET", "/v1/decisions/no-such-request")
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"] == "no decision with request_id 'no-such-request'"


def _example() -> bytes:
    return resources.files("ferroscore.demo").joinpath("example.json").read_bytes()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()
