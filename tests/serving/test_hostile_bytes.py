"""Every string a request sends that reaches the decision log, as an attacker fills it: a
U+0000 (which PostgreSQL's text cannot hold) is refused at the edge with a pointer, and
whatever else is answered 2xx reaches PostgreSQL: the audit finds 0 missing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import FraudModels, ServerProcess, register, serving

MODEL = "fraud-context"
RECORD = {"amount": 12.5, "age": 40, "merchant": "travel", "card_present": True}


@pytest.fixture(scope="module")
def served(
    module_database: str, fraud: FraudModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server of this module's own database serving the fraud model with a context field,
    `channel`, that is logged, not scored."""
    directory = tmp_path_factory.mktemp("context")
    schema = json.loads(fraud.schema.read_text())
    schema["properties"]["channel"] = {"type": "string", "x-ferroscore-source": "context"}
    path = directory / "schema.json"
    path.write_text(json.dumps(schema))
    register(module_database, MODEL, fraud.lightgbm, Path(path))
    env = {"DATABASE_URL": module_database, "FERROSCORE_DECISION_FLUSH_MS": "20"}
    with serving(env, directory / "server.log") as server:
        yield server


def _score(server: ServerProcess, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    return server.request("POST", f"/v1/models/{MODEL}/score", json.dumps(body).encode(),
                          headers)  # fmt: skip


def _infer(server: ServerProcess, request_id: Any) -> tuple[int, Any]:
    inputs = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
               "data": [v]} for k, v in RECORD.items()]  # fmt: skip
    body = {"id": request_id, "inputs": inputs}
    return server.request("POST", f"/v2/models/{MODEL}/infer", json.dumps(body).encode())


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"id": "x\x00", "features": {**RECORD, "channel": "web"}}, "/id"),
        ({"features": {**RECORD, "channel": "w\x00b"}}, "/features/channel"),
        ({"id": "ok", "rows": [{"features": {**RECORD, "channel": "\x00"}}]},
         "/rows/0/features/channel"),
    ],
)  # fmt: skip
def test_a_nul_that_would_reach_the_log_is_refused(
    served: ServerProcess, body: dict[str, Any], pointer: str
) -> None:
    status, refused = _score(served, body)
    assert status == 422, refused
    assert refused["errors"][0]["pointer"] == pointer
    assert refused["errors"][0]["code"] == "nul_character"


def test_a_nul_in_an_inference_id_is_refused(served: ServerProcess) -> None:
    status, refused = _infer(served, "v2\x00id")
    assert status == 400, refused
    assert "/id" in refused["error"]
    assert "nul_character" in refused["error"]


QUERY = "SELECT request_id FROM decisions WHERE request_id = ANY(%s)"
#: Text as an attacker sends it: any code point, U+0000 and the COPY delimiters included.
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40) | st.sampled_from(
    ["\x00", "a\tb", "a\nb", "\\", "\\N", "\\.", "\u2028", "é\x00"]
)
#: An X-Request-ID as a client can send one: any printable Latin-1.
HEADER = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                               blacklist_characters="\x7f"), min_size=1, max_size=64)  # fmt: skip


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(reference=TEXT, channel=TEXT, header=HEADER, v2_id=TEXT, batch=st.booleans())
def test_every_answered_decision_reaches_postgresql(
    served: ServerProcess, module_database: str, reference: str, channel: str, header: str,
    v2_id: str, batch: bool,
) -> None:  # fmt: skip
    answered: list[str] = []
    record = {"features": {**RECORD, "channel": channel}}
    body: dict[str, Any] = {"id": reference, **({"rows": [record, record]} if batch else record)}
    status, scored = _score(served, body, **{"x-request-id": header})
    if status == 200:
        answered.append(scored["request_id"])
    else:
        assert status in (400, 422), scored
    status, inferred = _infer(served, v2_id)
    if status == 200:
        answered.append(inferred["parameters"]["request_id"])
    else:
        assert status == 400, inferred
    deadline = time.monotonic() + 10
    with psycopg.connect(module_database, autocommit=True) as conn:
        while True:
            found = {r[0] for r in conn.execute(QUERY, (answered,))}
            missing = set(answered) - found
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        quarantined = conn.execute("SELECT count(*) FROM decisions_quarantine").fetchone()
    assert not missing, (missing, served.log()[-3000:])
    assert quarantined == (0,)
