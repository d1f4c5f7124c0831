"""Idempotency keys against real servers and PostgreSQL, with Stripe's semantics: a retry
gets the first response byte for byte and logs nothing twice; another request under the key
is 422; a retry while the first runs is 409; two processes racing on a key run it once; the
kept response outlives a restart and expires after its TTL."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from support import FRAUD_THRESHOLDS, FraudModels, ServerProcess, register, serving

pytestmark = pytest.mark.e2e

SCORE = "/v1/models/card-fraud/score"
RECORD = {"amount": 120.0, "age": 40, "merchant": "travel", "card_present": False}
#: A decision hook that takes its time when asked to, so a request can be caught in flight.
SLOW = """
    import time

    from ferroscore.hooks import Context, Scored, decide

    @decide("card-fraud", budget_ms=5000)
    def slow(scored: Scored, ctx: Context) -> None:
        if any(r.values["amount"] == 77.7 for r in scored.rows):
            time.sleep(1.5)
"""


def env_for(database_url: str, directory: Path, **more: str) -> dict[str, str]:
    (directory / "slow_hooks.py").write_text(textwrap.dedent(SLOW))
    return {"DATABASE_URL": database_url, "FERROSCORE_HOOKS": "slow_hooks",
            "FERROSCORE_DECISION_FLUSH_MS": "20", "FERROSCORE_IDEMPOTENCY_TTL_S": "3",
            "PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")]),
            **more}  # fmt: skip


@pytest.fixture(scope="module")
def database(module_database: str, fraud: FraudModels) -> str:
    register(module_database, "card-fraud", fraud.lightgbm, fraud.schema, FRAUD_THRESHOLDS)
    return module_database


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("idempotency")
    # Two workers: a request blocked on its slow hook must not hold back the retry.
    env = env_for(database, directory, FERROSCORE_WORKERS="2")
    with serving(env, directory / "server.log") as srv:
        yield srv


def send(server: ServerProcess, key: str | None, record: dict[str, object],
         path: str = SCORE) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    headers = {**server.headers, **({"idempotency-key": key} if key else {})}
    body = json.dumps({"features": record}).encode()
    request = urllib.request.Request(server.url + path, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def decisions(database: str, request_id: str) -> int:
    time.sleep(0.3)  # the log writes every 20 ms
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM decisions WHERE request_id = %s",
                           (request_id,)).fetchone()  # fmt: skip
    return int(row[0]) if row else 0


def test_a_retry_replays_the_first_response_and_logs_nothing_twice(
    server: ServerProcess, database: str
) -> None:
    key = uuid.uuid4().hex
    status, headers, first = send(server, key, RECORD)
    assert status == 200
    assert "idempotent-replayed" not in {h.lower() for h in headers}
    first_id = {k.lower(): v for k, v in headers.items()}["x-request-id"]
    assert first_id == json.loads(first)["request_id"]
    status, headers, again = send(server, key, RECORD)
    assert (status, again) == (200, first)
    replayed = {k.lower(): v for k, v in headers.items()}
    assert replayed["idempotent-replayed"] == "true"
    # The replay is the first answer, its X-Request-ID too.
    assert replayed["x-request-id"] == first_id
    assert decisions(database, json.loads(first)["request_id"]) == 1
    # Without a key, or with another, the same body is scored again.
    _, _, other = send(server, uuid.uuid4().hex, RECORD)
    assert json.loads(other)["request_id"] != json.loads(first)["request_id"]


def test_the_same_key_with_another_request_is_refused(server: ServerProcess) -> None:
    key = uuid.uuid4().hex
    assert send(server, key, RECORD)[0] == 200
    status, _, body = send(server, key, {**RECORD, "amount": 121.0})
    assert (status, json.loads(body)["code"]) == (422, "idempotency_key_reused")
    # Another path is another request too.
    status, _, body = send(server, key, RECORD, "/v2/models/card-fraud/infer")
    assert (status, json.loads(body)["code"]) == (422, "idempotency_key_reused")


def test_refusals_are_kept_and_bad_keys_refused(server: ServerProcess) -> None:
    key = uuid.uuid4().hex
    status, _, first = send(server, key, {**RECORD, "amount": -1})
    assert status == 422
    assert send(server, key, {**RECORD, "amount": -1})[::2] == (422, first)
    status, _, body = send(server, "x" * 300, RECORD)
    assert (status, json.loads(body)["code"]) == (400, "invalid_idempotency_key")


def test_a_retry_while_the_first_runs_is_409(server: ServerProcess, database: str) -> None:
    key = uuid.uuid4().hex
    slow = {**RECORD, "amount": 77.7}
    first: list[tuple[int, dict[str, str], bytes]] = []
    runner = threading.Thread(target=lambda: first.append(send(server, key, slow)))
    runner.start()
    time.sleep(0.5)
    status, headers, body = send(server, key, slow)
    runner.join()
    assert (status, json.loads(body)["code"]) == (409, "idempotency_request_in_progress")
    assert {k.lower(): v for k, v in headers.items()}["retry-after"] == "1"
    assert first[0][0] == 200
    assert send(server, key, slow)[::2] == (200, first[0][2])


def test_two_processes_racing_on_a_key_run_it_once_and_it_outlives_a_restart(
    database: str, tmp_path: Path
) -> None:
    env = env_for(database, tmp_path, FERROSCORE_PROCESSES="2")
    key = uuid.uuid4().hex
    results: list[tuple[int, dict[str, str], bytes]] = []
    with serving(env, tmp_path / "two.log") as server:
        racers = [threading.Thread(target=lambda: results.append(send(server, key, RECORD)))
                  for _ in range(16)]  # fmt: skip
        for t in racers:
            t.start()
        for t in racers:
            t.join()
        answered = [body for status, _, body in results if status == 200]
        busy = [status for status, _, _ in results if status == 409]
        assert len(answered) + len(busy) == 16
        assert len(set(answered)) == 1, "every 200 is the one response"
        request_id = json.loads(answered[0])["request_id"]
        assert decisions(database, request_id) == 1
    with serving(env, tmp_path / "again.log") as server:
        assert send(server, key, RECORD)[::2] == (200, answered[0])
        # Kept 3 s (FERROSCORE_IDEMPOTENCY_TTL_S): then the key is free again.
        time.sleep(3.5)
        status, _, fresh = send(server, key, RECORD)
        assert status == 200
        assert json.loads(fresh)["request_id"] != request_id


def test_a_version_is_not_registered_twice(server: ServerProcess, fraud: FraudModels) -> None:
    key = {"idempotency-key": uuid.uuid4().hex}
    files, fields = {"model": fraud.lightgbm.read_bytes()}, {"schema": fraud.schema.read_text()}
    path = "/v1/models/card-fraud/versions"
    status, first = server.upload(path, files, fields, key)
    assert status == 201, first
    assert server.upload(path, files, fields, key) == (201, first)
    _, listed = server.request("GET", path)
    assert [v["version"] for v in listed["versions"]] == [1, first["version"]]
