"""The decision log read back: a request's decisions, by the `request_id` its answer carried,
within the caller's tenant."""

from __future__ import annotations

from psycopg.rows import dict_row

from ferroscore.pipeline import Call, Handler, Reply, error_reply, json_reply
from ferroscore.service import Service

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
        if not rows:
            return error_reply(404, "not_found", f"no decision with request_id {request_id!r}")
        for row in rows:
            row["created_at"] = row["created_at"].isoformat()
        return json_reply(200, {"request_id": request_id, "decisions": rows})

    return handle
