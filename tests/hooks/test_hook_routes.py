"""Hooks in a real server: `FERROSCORE_HOOKS` names a module on the Python path; its decision
hook has the final say over HTTP and in the decision log, its routes answer beside ours, and
a hook that raises or hangs costs its request only. A bad hooks module stops the start-up
with a message naming the hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from openapi_spec_validator import validate

from support import FRAUD_THRESHOLDS, FraudModels, ServerProcess, free_port, register, serving

HOOKS = """
    import asyncio
    import time

    import numpy  # its OpenBLAS threads must not take the stop signal from us

    from ferroscore.hooks import Context, Outcome, Reject, Scored, decide, route
    from ferroscore.pipeline import Call


    @decide("card-fraud")
    def overlay(scored: Scored, ctx: Context) -> Outcome:
        if any(r.values["merchant"] == "fuel" for r in scored.rows):
            raise Reject("fuel_blocked", "no fuel today", status=403)
        if any(r.values["age"] == 66 for r in scored.rows):
            raise RuntimeError("the age of the beast")
        if any(r.values["age"] == 77 for r in scored.rows):
            time.sleep(3)
        return Outcome(
            decisions=["manual" if r.values["amount"] > 500 else None for r in scored.rows],
            extra={"overlay": "v1"},
        )


    @route("GET", "/v1/ext/recent/{decision}")
    def recent(call: Call, ctx: Context) -> dict[str, object]:
        '''How many decisions of a kind the log holds.'''
        assert ctx.pool is not None
        with ctx.pool.connection() as conn:
            (n,) = conn.execute(
                "SELECT count(*) FROM decisions WHERE decision = %s", (call.params["decision"],)
            ).fetchone()
        return {"decision": call.params["decision"], "count": n}


    @route("POST", "/v1/ext/hang")
    async def hang(call: Call, ctx: Context) -> None:
        await asyncio.sleep(5)
"""

RECORD = {"amount": 520.0, "age": 40, "merchant": "travel", "card_present": False}


@pytest.fixture(scope="module")
def server(
    module_database: str, fraud: FraudModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    register(module_database, "card-fraud", fraud.lightgbm, fraud.schema, FRAUD_THRESHOLDS)
    directory = tmp_path_factory.mktemp("hooks")
    (directory / "fraud_hooks.py").write_text(textwrap.dedent(HOOKS))
    env = {
        "DATABASE_URL": module_database,
        "FERROSCORE_HOOKS": "fraud_hooks",
        "FERROSCORE_HOOK_BUDGET_MS": "500",
        "FERROSCORE_DECISION_FLUSH_MS": "20",
        "PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")]),
    }
    with serving(env, directory / "server.log") as srv:
        yield srv


def score(server: ServerProcess, features: dict[str, object]) -> tuple[int, dict[str, object]]:
    body = json.dumps({"features": features}).encode()
    return server.request("POST", "/v1/models/card-fraud/score", body)


def logged(database_url: str, request_id: object) -> list[tuple[str | None]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT decision FROM decisions WHERE request_id = %s", (request_id,)
            ).fetchall()
        if rows:
            return rows
        time.sleep(0.05)
    return []


def test_the_decision_hook_answers_and_the_log_agrees(
    server: ServerProcess, module_database: str
) -> None:
    status, answer = score(server, RECORD)
    assert status == 200, answer
    assert answer["decision"] == "manual"
    assert answer["extensions"] == {"overlay": "v1"}
    assert logged(module_database, answer["request_id"]) == [("manual",)]
    status, answer = score(server, {**RECORD, "amount": 20.0})
    assert answer["decision"] in ("approve", "decline")
    assert logged(module_database, answer["request_id"]) == [(answer["decision"],)]
    status, counted = server.request("GET", "/v1/ext/recent/manual")
    assert (status, counted) == (200, {"decision": "manual", "count": 1})


def test_route_hooks_are_in_the_openapi_document(server: ServerProcess) -> None:
    status, doc = server.request("GET", "/openapi.json")
    assert status == 200
    validate(doc)  # a valid OpenAPI 3.1 document
    recent = doc["paths"]["/v1/ext/recent/{decision}"]["get"]
    assert recent["summary"] == "How many decisions of a kind the log holds."
    assert recent["tags"] == ["extensions"]
    assert recent["parameters"][0]["name"] == "decision"
    assert "post" in doc["paths"]["/v1/ext/hang"]
    assert "post" in doc["paths"]["/v1/models/{name}/score"]


def count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM decisions").fetchone()
    return int(row[0]) if row else 0


def test_refusals_failures_and_hangs_cost_their_request_only(
    server: ServerProcess, module_database: str
) -> None:
    time.sleep(0.5)  # the earlier tests' decisions are written
    before = count(module_database)
    status, answer = score(server, {**RECORD, "merchant": "fuel"})
    assert (status, answer["code"]) == (403, "fuel_blocked")
    status, answer = score(server, {**RECORD, "age": 66})
    assert (status, answer["code"]) == (500, "hook_failed")
    assert "fraud_hooks.overlay raised RuntimeError('the age of the beast')" in answer["message"]
    started = time.monotonic()
    status, answer = score(server, {**RECORD, "age": 77})
    assert (status, answer["code"]) == (503, "hook_timeout")
    assert time.monotonic() - started < 2
    status, answer = server.request("POST", "/v1/ext/hang", b"")
    assert (status, answer["code"]) == (503, "hook_timeout")
    # Each of those three scored requests is in the log, and the process scores on.
    deadline = time.monotonic() + 10
    while count(module_database) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(module_database) == before + 3
    assert score(server, RECORD)[0] == 200
    assert server.request("GET", "/health/ready")[0] == 200


def test_a_bad_hooks_module_stops_the_start_up_naming_the_hook(
    module_database: str, tmp_path: Path
) -> None:
    (tmp_path / "broken_hooks.py").write_text(
        "from ferroscore.hooks import decide\n\n@decide('m')\ndef lonely(scored):\n    pass\n"
    )
    env = {**os.environ, "DATABASE_URL": module_database, "FERROSCORE_PORT": str(free_port()),
           "PYTHONPATH": str(tmp_path)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "ferroscore", "serve", "--hooks", "broken_hooks"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "broken_hooks.lonely: a decide hook takes two arguments" in done.stderr
