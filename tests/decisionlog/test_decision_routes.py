"""`GET /v1/decisions/{request_id}` over real HTTP: a batch's rows read back as they were
scored, within the caller's tenant and scope only."""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from ferroscore.models.registry import DEMO_MODEL

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
    request_id = _scored_and_logged(server)
    path = f"/v1/decisions/{request_id}"
    other = create_key(database_url, tenant="elsewhere", scopes=("read",))
    status, body = server.request("GET", path, headers={"authorization": f"Bearer {other}"})
    assert (status, body["code"]) == (404, "not_found")
    scorer = create_key(database_url, scopes=("score",))
    status, body = server.request("GET", path, headers={"authorization": f"Bearer {scorer}"})
    assert (status, body["code"]) == (403, "insufficient_scope")
    status, body = server.request("GET", path, headers={"authorization": ""})
    assert status == 401


@pytest.mark.parametrize(
    "path",
    ["/v1/decisions?version=%C2%B2", "/v1/decisions?limit=%D9%A3",
     f"/v1/models/{DEMO_MODEL}/monitoring?version=%C2%B2", f"{SCORE}?explain=%C2%B2"],
)  # fmt: skip
def test_digits_that_are_not_ascii_are_a_400_not_a_500(server: ServerProcess, path: str) -> None:
    """`str.isdigit` takes "²" and "٣", which `int` refuses."""
    method, body = ("POST", b"{}") if path.startswith(SCORE) else ("GET", None)
    status, refused = server.request(method, path, body)
    assert (status, refused["code"]) == (400, "invalid_query"), refused


def test_pointers_to_names_the_caller_chose_are_escaped(server: ServerProcess) -> None:
    path = f"/v1/decisions/{_scored_and_logged(server)}/outcome"
    status, refused = server.request("POST", path, _json({"label": 1, "a/b~c": 2}))
    assert (status, refused["errors"][0]["pointer"]) == (422, "/a~1b~0c"), refused


def test_an_unknown_request_id_is_a_404(server: ServerProcess) -> None:
    status, body = server.request("GET", "/v1/decisions/no-such-request")
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"] == "no decision with request_id 'no-such-request'"


def _scored_and_logged(server: ServerProcess) -> str:
    """The request id of the demo example, scored and its decision written."""
    status, scored = server.request(
        "POST", SCORE, resources.files("ferroscore.demo").joinpath("example.json").read_bytes()
    )
    assert status == 200
    assert _read_back(server, scored["request_id"])[0] == 200
    return str(scored["request_id"])


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_an_outcome_is_recorded_once_and_read_back(
    server: ServerProcess, database_url: str
) -> None:
    request_id = _scored_and_logged(server)
    path = f"/v1/decisions/{request_id}/outcome"
    outcome = {"label": True, "amount": 120.5, "observed_at": "2026-11-29T10:00:00z"}
    status, first = server.request("POST", path, _json(outcome))
    assert status == 201, first
    assert (first["label"], first["amount"]) == (1.0, 120.5)
    assert first["observed_at"] == "2026-11-29T10:00:00+00:00"
    # The same outcome again (a retry) is the same answer; another one is a conflict.
    assert server.request("POST", path, _json(outcome)) == (200, first)
    status, body = server.request("POST", path, _json({**outcome, "label": 0}))
    assert (status, body["code"]) == (409, "outcome_conflict")
    status, body = server.request("GET", f"/v1/decisions/{request_id}")
    assert {"request_id": request_id, **body["outcome"]} == first
    # Another tenant's key does not see the request; a read-only key may not record.
    other = create_key(database_url, tenant="elsewhere", scopes=("score",))
    headers = {"authorization": f"Bearer {other}"}
    assert server.request("POST", path, _json(outcome), headers)[0] == 404
    reader = create_key(database_url, scopes=("read",))
    headers = {"authorization": f"Bearer {reader}"}
    assert server.request("POST", path, _json(outcome), headers)[0] == 403


def test_an_outcome_without_its_decision_is_a_404(server: ServerProcess) -> None:
    status, body = server.request("POST", "/v1/decisions/nowhere/outcome", _json({"label": 1}))
    assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("body", "status", "code", "pointer"),
    [
        (b"{", 400, "malformed_json", None),
        (b"[1]", 422, "type", ""),
        (b"{}", 422, "missing", "/label"),
        (b'{"label": "yes"}', 422, "type", "/label"),
        (b'{"label": 1, "amount": "12"}', 422, "type", "/amount"),
        (b'{"label": 1, "observed_at": "yesterday"}', 422, "format", "/observed_at"),
        (b'{"label": 1, "observed_at": "2026-11-29T10:00:00"}', 422, "format", "/observed_at"),
        (b'{"label": 1, "why": "fraud"}', 422, "unknown_field", "/why"),
    ],
)
def test_bad_outcomes_get_a_precise_4xx(
    server: ServerProcess, body: bytes, status: int, code: str, pointer: str | None
) -> None:
    request_id = _scored_and_logged(server)
    got, problem = server.request("POST", f"/v1/decisions/{request_id}/outcome", body)
    assert (got, problem["code"]) == (status, code), problem
    if pointer is not None:
        assert problem["errors"][0]["pointer"] == pointer


def _record(i: int) -> dict[str, Any]:
    names = [n.replace(" ", "_") for n in DATA.feature_names]
    return {"features": dict(zip(names, map(float, DATA.data[i]), strict=True))}


def test_the_callers_own_id_is_kept_echoed_and_searchable(server: ServerProcess) -> None:
    status, scored = server.request("POST", SCORE, _json({"id": "pay-8812", **_record(0)}))
    assert (status, scored["id"]) == (200, "pay-8812"), scored
    # Without one in the body, the X-Request-ID header is the caller's reference.
    status, by_header = server.request("POST", SCORE, _json({"rows": [_record(1), _record(2)]}),
                                       headers={"x-request-id": "loan-app-77"})  # fmt: skip
    assert (status, by_header["id"]) == (200, "loan-app-77"), by_header
    status, body = _read_back(server, scored["request_id"])
    assert [d["reference"] for d in body["decisions"]] == ["pay-8812"]
    assert _read_back(server, by_header["request_id"])[0] == 200
    status, page = server.request("GET", "/v1/decisions?reference=loan-app-77")
    assert status == 200, page
    assert [(d["request_id"], d["row_index"]) for d in page["decisions"]] == [
        (by_header["request_id"], 1), (by_header["request_id"], 0)]  # fmt: skip
    # An id that is neither a string nor an integer is refused where it is.
    status, refused = server.request("POST", SCORE, _json({"id": {"no": 1}, **_record(0)}))
    assert (status, refused["errors"][0]["pointer"]) == (422, "/id")


def test_pages_neither_repeat_nor_skip_while_decisions_arrive(server: ServerProcess) -> None:
    since = _now()
    first = [_scored(server, i) for i in range(7)]
    for request_id in first:
        assert _read_back(server, request_id)[0] == 200
    seen: list[str] = []
    path = f"/v1/decisions?since={since}&limit=3"
    status, page = server.request("GET", path)
    while True:
        assert status == 200, page
        seen += [d["request_id"] for d in page["decisions"]]
        if len(seen) == 3:
            # Newer decisions arrive between two pages.
            for request_id in [_scored(server, i) for i in range(2)]:
                assert _read_back(server, request_id)[0] == 200
        if page["next_cursor"] is None:
            break
        status, page = server.request("GET", f"{path}&cursor={page['next_cursor']}")
    assert seen == first[::-1]
    status, everything = server.request("GET", f"/v1/decisions?since={since}&model={DEMO_MODEL}"
                                               "&version=1&role=champion")  # fmt: skip
    assert len(everything["decisions"]) == 9


def _now() -> str:
    from datetime import UTC, datetime
    from urllib.parse import quote

    return quote(datetime.now(UTC).isoformat())


def _scored(server: ServerProcess, i: int) -> str:
    status, scored = server.request("POST", SCORE, _json(_record(i)))
    assert status == 200, scored
    return str(scored["request_id"])


@pytest.mark.parametrize(
    ("query", "name"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("since=yesterday", "since"),
     ("until=2026-01-01T00:00:00", "until"), ("cursor=bm9wZQ", "cursor"),
     ("version=x", "version"), ("role=judge", "role"), ("decision=a%00b", "decision")],
)  # fmt: skip
def test_bad_list_queries_get_a_400_with_a_pointer(
    server: ServerProcess, query: str, name: str
) -> None:
    status, body = server.request("GET", f"/v1/decisions?{query}")
    assert (status, body["code"]) == (400, "invalid_query"), body
    assert body["errors"][0]["pointer"] == f"/query/{name}"


def test_a_huge_feature_value_reads_back_as_the_float_it_was(server: ServerProcess) -> None:
    # PostgreSQL writes 1e300 with all its digits; it must not come back as an integer no
    # JSON answer can hold.
    record = _record(0)
    record["features"]["mean_radius"] = 1e300
    status, scored = server.request("POST", SCORE, _json({"id": "huge-1", **record}))
    assert status == 200, scored
    status, body = _read_back(server, scored["request_id"])
    assert status == 200, body
    assert body["decisions"][0]["features"]["mean_radius"] == 1e300
    status, page = server.request("GET", "/v1/decisions?reference=huge-1")
    assert (status, page["decisions"][0]["features"]["mean_radius"]) == (200, 1e300)
