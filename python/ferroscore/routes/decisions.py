"""The decision log read back — a request's decisions, by the `request_id` its answer carried —
and the outcome that arrives later (the ground truth), each within the caller's tenant."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.rows import dict_row

from ferroscore.pipeline import Call, Handler, Reply, error_reply, json_reply, pointer_error
from ferroscore.service import Service

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

#: Champion rows first, then the shadow's, each in the order of the request's records.
_QUERY = (
    "SELECT role, row_index, model, version, features, score AS scores, decision, created_at"
    " FROM decisions WHERE tenant = %s AND request_id = %s"
    " ORDER BY role <> 'champion', role, row_index"
)


def get(service: Service) -> Handler:
    """`GET /v1/decisions/{request_id}`: every row the request left in the log. Decisions are
    written in batches after the answer, within `FERROSCORE_DECISION_FLUSH_MS`: until then the
    request is not found."""

    def handle(call: Call) -> Reply:
        request_id = call.params["request_id"]
        with service.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
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
        return pointer_error(422, "unknown_field", f"unknown field {extra[0]!r}", f"/{extra[0]}")
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
