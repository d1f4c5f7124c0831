"""The decision log read back — a request's decisions, by the `request_id` its answer carried,
or a page of them by model, time, decision or the caller's own reference — and the outcome that
arrives later (the ground truth), each within the caller's tenant."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

from ferroscore.decisionlog.rows import FEATURES
from ferroscore.pipeline import (
    Call,
    Handler,
    Reply,
    digits,
    error_reply,
    json_reply,
    pointer,
    pointer_error,
    query_error,
)
from ferroscore.serving.openapi import VERSION
from ferroscore.serving.service import Service

#: The body of `POST /v1/decisions/{request_id}/outcome`, as the OpenAPI document shows it.
OUTCOME = {
    "type": "object", "required": ["label"], "additionalProperties": False,
    "properties": {
        "label": {"type": ["number", "boolean"],
                  "description": "what happened: 1 or true for the event the model scores"},
        "amount": {"type": ["number", "null"], "description": "what it was worth"},
        "observed_at": {"type": "string", "description": "when it was known (RFC 3339, with "
                        "its offset); unset: when it is recorded"},
    },
}  # fmt: skip
_OUTCOME_COLUMNS = "label, amount, observed_at, recorded_at"

_ROW = (
    f"role, row_index, model, version, {FEATURES} AS features, score AS scores, decision,"
    " reference, created_at, warnings"
)
#: Champion rows first, then the shadow's, each in the order of the request's records.
_QUERY = (
    f"SELECT {_ROW} FROM decisions d WHERE tenant = %s AND request_id = %s"
    " ORDER BY role <> 'champion', role, row_index"
)
#: A page's order, newest first: the decision table's unique key, so a cursor (the last row's
#: key) resumes exactly after it, whatever was written meanwhile.
_KEY = "created_at, request_id, row_index, model, version"
NEWEST_FIRST = ", ".join(k + " DESC" for k in _KEY.split(", "))
LIMIT, MAX_LIMIT = 100, 1000
#: Features are model inputs, numbers: PostgreSQL writes a large one (1e300) with all its
#: digits, which must come back a float, not an integer past what JSON answers can hold.
_FEATURE_LOADS = partial(json.loads, parse_int=float)

_TIME = {"type": "string", "format": "date-time"}
#: Text PostgreSQL can hold: no NUL character.
TEXT = {"type": "string", "pattern": "^[^\\x00]*$"}

#: The list's query parameters, as the OpenAPI document shows them.
LIST_QUERY: dict[str, tuple[dict[str, Any], str]] = {
    "model": (TEXT, "only this model's decisions"),
    "version": (VERSION, "only this version's (with model)"),
    "since": (_TIME, "made at or after this time (RFC 3339, with its offset)"),
    "until": (_TIME, "made before this time"),
    "decision": (TEXT, "only rows with this decision"),
    "reference": (TEXT, "only the request the caller gave this id"),
    "role": ({"enum": ["champion", "shadow"]},
             "only the answering version's rows, or the shadow's"),
    "limit": ({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
              f"rows per page (default {LIMIT})"),
    "cursor": ({"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
               "the next_cursor of the page before"),
}  # fmt: skip


def get(service: Service) -> Handler:
    """`GET /v1/decisions/{request_id}`: every row the request left in the log. Decisions are
    written in batches after the answer, within `FERROSCORE_DECISION_FLUSH_MS`: until then the
    request is not found."""

    def handle(call: Call) -> Reply:
        request_id = call.params["request_id"]
        with service.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            set_json_loads(_FEATURE_LOADS, cur)
            rows = cur.execute(_QUERY, (call.tenant, request_id)).fetchall()
            outcome = cur.execute(
                f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE tenant = %s AND request_id = %s",
                (call.tenant, request_id),
            ).fetchone()
        if not rows:
            return _unknown(request_id)
        for row in rows:
            row["created_at"] = row["created_at"].isoformat()
        answer = {"request_id": request_id, "decisions": rows,
                  "outcome": None if outcome is None else _shown(outcome)}  # fmt: skip
        return json_reply(200, answer)

    return handle


def list_page(service: Service) -> Handler:
    """`GET /v1/decisions`: the caller's decision rows, newest first, a page at a time. The
    answer's `next_cursor` (null on the last page) asks for the page after: pages never
    repeat a row nor skip one that was there when the first page was read."""

    def handle(call: Call) -> Reply:
        parsed = _filters(call.query)
        if isinstance(parsed, Reply):
            return parsed
        where, args, limit = parsed
        sql = (f"SELECT request_id, {_ROW} FROM decisions d WHERE tenant = %s{where}"
               f" ORDER BY {NEWEST_FIRST} LIMIT %s")  # fmt: skip
        with service.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            set_json_loads(_FEATURE_LOADS, cur)
            rows = cur.execute(sql, [call.tenant, *args, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = _cursor(rows[-1]) if more else None
        for row in rows:
            row["created_at"] = row["created_at"].isoformat()
        return json_reply(200, {"decisions": rows, "next_cursor": cursor})

    return handle


def _cursor(row: dict[str, Any]) -> str:
    key = [row["created_at"].isoformat(), row["request_id"], row["row_index"], row["model"],
           row["version"]]  # fmt: skip
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _filters(query: Any) -> tuple[str, list[Any], int] | Reply:
    """The SQL conditions (after the tenant's), their arguments and the page size that the
    query parameters ask for, or the 400 that refuses them."""
    where: list[str] = []
    args: list[Any] = []
    for name in ("model", "decision", "reference", "role"):
        if (value := query.get(name, None)) is not None:
            if name == "role" and value not in ("champion", "shadow"):
                return query_error(name, value, "champion or shadow")
            if "\x00" in value:
                return query_error(name, value, "text without NUL characters")
            where.append(f"{name} = %s")
            args.append(value)
    if (version := query.get("version", None)) is not None:
        if not (digits(version) and 0 < int(version) < 2**31):
            return query_error("version", version, "a positive integer")
        where.append("version = %s")
        args.append(int(version))
    for name, op in (("since", ">="), ("until", "<")):
        if (raw := query.get(name, None)) is not None:
            when = rfc3339(raw)
            if when is None:
                return query_error(name, raw, "an RFC 3339 time with its offset")
            where.append(f"created_at {op} %s")
            args.append(when)
    limit = LIMIT
    if (raw := query.get("limit", None)) is not None:
        if not (digits(raw) and 1 <= int(raw) <= MAX_LIMIT):
            return query_error("limit", raw, f"an integer from 1 to {MAX_LIMIT}")
        limit = int(raw)
    if raw := query.get("cursor", None):  # an empty cursor asks for the first page
        key = _decoded_cursor(raw)
        if key is None:
            return query_error("cursor", raw, "the next_cursor of an earlier page")
        where.append(f"({_KEY}) < (%s, %s, %s, %s, %s)")
        args.extend(key)
    return "".join(" AND " + w for w in where), args, limit


def rfc3339(raw: str) -> datetime | None:
    """A query's RFC 3339 time, with its offset (a `+` read as a space is put back)."""
    try:
        when = datetime.fromisoformat(raw.upper().replace(" ", "+"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _decoded_cursor(raw: str) -> list[Any] | None:
    try:
        key = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    shapes = (str, str, int, str, int)
    if not isinstance(key, list) or len(key) != len(shapes):
        return None
    pairs = zip(key, shapes, strict=True)
    if not all(isinstance(k, t) and not isinstance(k, bool) for k, t in pairs):
        return None
    when = rfc3339(key[0])
    return None if when is None else [when, *key[1:]]


def post_outcome(service: Service) -> Handler:
    """`POST /v1/decisions/{request_id}/outcome`: records what the decided request turned out
    to be. 201 when recorded; 200 with the same answer when the same outcome comes again (a
    retry); 409 `outcome_conflict` when another one was recorded; 404 when the request left
    no decision in the caller's tenant."""

    def handle(call: Call) -> Reply:
        request_id, tenant = call.params["request_id"], call.tenant
        with service.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            decided = cur.execute(
                "SELECT 1 FROM decisions WHERE tenant = %s AND request_id = %s LIMIT 1",
                (tenant, request_id),
            ).fetchone()
            if decided is None:
                return _unknown(request_id)
            parsed = _outcome(call.body_bytes())
            if isinstance(parsed, Reply):
                return parsed
            label, amount, observed_at = parsed
            recorded = cur.execute(
                "INSERT INTO outcomes (tenant, request_id, label, amount, observed_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant, request_id) DO NOTHING"
                f" RETURNING {_OUTCOME_COLUMNS}",
                (tenant, request_id, label, amount, observed_at or datetime.now(UTC)),
            ).fetchone()
            status = 201
            if recorded is None:
                status = 200
                recorded = cur.execute(
                    f"SELECT {_OUTCOME_COLUMNS} FROM outcomes"
                    " WHERE tenant = %s AND request_id = %s",
                    (tenant, request_id),
                ).fetchone()
                assert recorded is not None  # outcomes are never deleted
                same = (recorded["label"], recorded["amount"]) == (label, amount)
                if not same or observed_at not in (None, recorded["observed_at"]):
                    return error_reply(409, "outcome_conflict",
                                       f"request {request_id!r} has another outcome")  # fmt: skip
        return json_reply(status, {"request_id": request_id, **_shown(recorded)})

    return handle


def _unknown(request_id: str) -> Reply:
    return error_reply(404, "not_found", f"no decision with request_id {request_id!r}")


def _shown(outcome: dict[str, Any]) -> dict[str, Any]:
    return {**outcome, "observed_at": outcome["observed_at"].isoformat(),
            "recorded_at": outcome["recorded_at"].isoformat()}  # fmt: skip


def _outcome(body: bytes) -> tuple[float, float | None, datetime | None] | Reply:
    """The label, amount and time of an outcome body, or the 4xx that refuses it."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        return error_reply(400, "malformed_json", f"the body is not JSON: {e}")
    if not isinstance(value, dict):
        return pointer_error(422, "type", 'expected {"label": …}', "")
    if extra := sorted(set(value) - {"label", "amount", "observed_at"}):
        return pointer_error(422, "unknown_field", f"unknown field {extra[0]!r}", pointer(extra[0]))
    if "label" not in value:
        return pointer_error(422, "missing", "label is required", "/label")
    label, amount = value["label"], value.get("amount")
    if not _number(label, booleans=True):
        return pointer_error(422, "type", "label must be a number or a boolean", "/label")
    if amount is not None and not _number(amount, booleans=False):
        return pointer_error(422, "type", "amount must be a number", "/amount")
    observed_at = None
    if (raw := value.get("observed_at")) is not None:
        try:
            observed_at = datetime.fromisoformat(raw.upper()) if isinstance(raw, str) else None
        except ValueError:
            observed_at = None
        if observed_at is None or observed_at.tzinfo is None:
            return pointer_error(422, "format", "observed_at must be an RFC 3339 time with "
                                 "its offset", "/observed_at")  # fmt: skip
    return float(label), None if amount is None else float(amount), observed_at


def _number(value: object, *, booleans: bool) -> bool:
    if isinstance(value, bool):
        return booleans
    return isinstance(value, int | float) and math.isfinite(value)
