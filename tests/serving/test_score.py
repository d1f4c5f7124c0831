"""`POST /v1/models/{name}/score` over real HTTP: exact scores, precise 4xx, decisions stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from ferroscore.models.registry import DEMO_MODEL

from support import ServerProcess

SCORE = f"/v1/models/{DEMO_MODEL}/score"
DATA = load_breast_cancer()
JSON_TEST_SUITE = Path(__file__).resolve().parents[1] / "data" / "JSONTestSuite"


@pytest.fixture(scope="module")
def names(server: ServerProcess) -> list[str]:
    status, body = server.request("GET", f"/v1/models/{DEMO_MODEL}")
    assert status == 200
    return list(sorted(body["input_schema"]["properties"], key=lambda n: _column(body, n)))


def _column(model: dict[str, object], name: str) -> int:
    schema = model["input_schema"]
    assert isinstance(schema, dict)
    return int(schema["properties"][name]["x-ferroscore-column"])


def _body(names: list[str], row: object) -> bytes:
    return json.dumps({"features": dict(zip(names, map(float, row), strict=True))}).encode()  # type: ignore[call-overload]


def test_scores_match_xgboost_and_are_logged(
    server: ServerProcess, names: list[str], demo_model_bytes: bytes, database_url: str
) -> None:
    expected = xgb.Booster(model_file=bytearray(demo_model_bytes)).inplace_predict(DATA.data)
    ids = []
    for i in range(0, len(DATA.data), 25):
        status, body = server.request("POST", SCORE, _body(names, DATA.data[i]))
        assert status == 200, body
        assert body["model"] == DEMO_MODEL
        assert body["version"] == 1
        assert abs(body["score"] - float(expected[i])) <= 1e-6
        ids.append(body["request_id"])
    deadline = time.monotonic() + 10
    found: set[str] = set()
    while time.monotonic() < deadline and len(found) < len(ids):
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT request_id FROM decisions WHERE request_id = ANY(%s)", (ids,)
            ).fetchall()
        found = {r[0] for r in rows}
        time.sleep(0.05)
    assert found == set(ids)


@pytest.mark.parametrize(
    ("body", "status", "code", "pointer"),
    [
        (b"", 400, "syntax", ""),
        (b'{"features": {"mean_radius": 1', 400, "syntax", ""),
        (b'{"features": {"mean_radius": Infinity}}', 400, "syntax", ""),
        (b"\xc3\x28", 400, "syntax", ""),
        (b"[1, 2]", 422, "type", ""),
        (b'{"rows": {}}', 422, "type", "/rows"),
        (b'{"record": {}}', 422, "unknown_field", "/record"),
        (b'{"features": {"mean_radius": "wide"}}', 422, "type", "/features/mean_radius"),
        (b'{"features": {"mean_radius": -3}}', 422, "minimum", "/features/mean_radius"),
        (b'{"features": {"a~b": 1}}', 422, "unknown_feature", "/features/a~0b"),
    ],
)
def test_bad_bodies_get_a_precise_4xx(
    server: ServerProcess, body: bytes, status: int, code: str, pointer: str
) -> None:
    got_status, got = server.request("POST", SCORE, body)
    assert got_status == status, got
    assert got["errors"][0]["code"] == code
    assert got["errors"][0]["pointer"] == pointer
    assert got["message"]


def test_oversized_bodies_are_413(server: ServerProcess, max_body_bytes: int) -> None:
    status, body = server.request("POST", SCORE, b"{" + b" " * max_body_bytes + b"}")
    assert (status, body["errors"][0]["code"]) == (413, "too_large")
    assert "max_body_bytes" in body["message"]


def test_missing_features_are_all_named(server: ServerProcess, names: list[str]) -> None:
    status, body = server.request("POST", SCORE, b'{"features": {}}')
    assert status == 422
    assert {e["pointer"] for e in body["errors"]} == {f"/features/{n}" for n in names}
    assert {e["code"] for e in body["errors"]} == {"missing"}


def test_unknown_model_is_404(server: ServerProcess, names: list[str]) -> None:
    status, body = server.request("POST", "/v1/models/nope/score", _body(names, DATA.data[0]))
    assert (status, body["code"]) == (404, "model_not_found")


def test_no_malformed_json_gets_a_5xx(server: ServerProcess) -> None:
    files = sorted((JSON_TEST_SUITE / "test_parsing").glob("n_*.json"))
    assert files
    for path in files:
        status, body = server.request("POST", SCORE, path.read_bytes())
        assert 400 <= status < 500, (path.name, status, body)
    status, _ = server.request("GET", "/health/live")
    assert status == 200


def _rows(names: list[str], data: object) -> list[dict[str, object]]:
    return [{"features": dict(zip(names, map(float, r), strict=True))} for r in data]  # type: ignore[call-overload]


def test_batches_score_every_row_and_log_each(
    server: ServerProcess, names: list[str], demo_model_bytes: bytes, database_url: str
) -> None:
    expected = xgb.Booster(model_file=bytearray(demo_model_bytes)).inplace_predict(DATA.data)
    rows = _rows(names, DATA.data[:100])
    status, body = server.request("POST", SCORE, json.dumps({"rows": rows}).encode())
    assert status == 200, body
    assert len(body["scores"]) == 100
    for got, want in zip(body["scores"], expected[:100], strict=True):
        assert abs(got - float(want)) <= 1e-6
    assert "errors" not in body
    deadline = time.monotonic() + 10
    logged: list[int] = []
    while time.monotonic() < deadline and len(logged) < 100:
        with psycopg.connect(database_url) as conn:
            logged = [
                r[0]
                for r in conn.execute(
                    "SELECT row_index FROM decisions WHERE request_id = %s ORDER BY row_index",
                    (body["request_id"],),
                )
            ]
        time.sleep(0.05)
    assert logged == list(range(100))


def test_a_bad_row_refuses_the_batch_unless_partial(
    server: ServerProcess, names: list[str]
) -> None:
    rows = _rows(names, DATA.data[:3])
    rows[1]["features"][names[4]] = "n/a"  # type: ignore[index]
    status, body = server.request("POST", SCORE, json.dumps({"rows": rows}).encode())
    assert status == 422
    assert [(e["pointer"], e["code"]) for e in body["errors"]] == [
        (f"/rows/1/features/{names[4]}", "type")
    ]
    status, body = server.request(
        "POST", SCORE, json.dumps({"rows": rows, "partial": True}).encode()
    )
    assert status == 200, body
    assert body["scores"][1] is None
    assert all(isinstance(body["scores"][i], float) for i in (0, 2))
    assert body["errors"][0]["pointer"] == f"/rows/1/features/{names[4]}"


def test_ndjson_lines_are_records(server: ServerProcess, names: list[str]) -> None:
    lines = [json.dumps(r) for r in _rows(names, DATA.data[:5])]
    lines[3] = '{"features": {}}'
    body = ("\n".join(lines) + "\n").encode()
    headers = {"content-type": "application/x-ndjson"}
    status, answer = server.request("POST", SCORE, body, headers)
    assert status == 422
    assert {e["pointer"].split("/features/")[0] for e in answer["errors"]} == {"/3"}
    status, answer = server.request("POST", SCORE + "?partial=true", body, headers)
    assert status == 200, answer
    assert [s is None for s in answer["scores"]] == [False, False, False, True, False]
    status, answer = server.request("POST", SCORE + "?partial=maybe", body, headers)
    assert (status, answer["code"]) == (400, "invalid_query")


def test_limits_are_413_and_name_the_limit(server: ServerProcess) -> None:
    deep = b"[" * 100 + b"]" * 100
    status, body = server.request("POST", SCORE, deep)
    assert (status, body["errors"][0]["code"]) == (413, "too_deep")
    assert "max_depth" in body["message"]
