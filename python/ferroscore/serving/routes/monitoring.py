"""`GET /v1/models/{name}/monitoring`: drift and performance of one version over a window of
its decision log (see `ferroscore.decisionlog.monitoring`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ferroscore.decisionlog import monitoring
from ferroscore.models.registry import RegistryError
from ferroscore.pipeline import Call, Handler, Reply, digits, error_reply, json_reply, query_error
from ferroscore.serving.openapi import VERSION
from ferroscore.serving.routes.decisions import rfc3339
from ferroscore.serving.service import Service

#: The window when the query names none: the last day.
DEFAULT_WINDOW = timedelta(days=1)

#: The route's query parameters, as the OpenAPI document shows them.
QUERY: dict[str, tuple[dict[str, Any], str]] = {
    "version": (VERSION, "the version (default: the active one)"),
    "since": ({"type": "string", "format": "date-time"},
              "the window's start (default: a day before its end)"),
    "until": ({"type": "string", "format": "date-time"}, "the window's end (default: now)"),
    "bucket": ({"enum": list(monitoring.BUCKETS)}, "the drift series' step (default: day)"),
}  # fmt: skip


def get(service: Service) -> Handler:
    def handle(call: Call) -> Reply:
        name, query = call.params["name"], call.query
        version: int | None = None
        if (raw := query.get("version", None)) is not None:
            if not (digits(raw) and 0 < int(raw) < 2**31):
                return query_error("version", raw, "a positive integer")
            version = int(raw)
        window: dict[str, datetime] = {}
        for edge in ("since", "until"):
            if (raw := query.get(edge, None)) is not None:
                when = rfc3339(raw)
                if when is None:
                    return query_error(edge, raw, "an RFC 3339 time with its offset")
                window[edge] = when
        until = window.get("until", datetime.now(UTC))
        since = window.get("since", until - DEFAULT_WINDOW)
        bucket = query.get("bucket", None) or "day"
        if bucket not in monitoring.BUCKETS:
            return query_error("bucket", bucket, " or ".join(monitoring.BUCKETS))
        models = service.registry.scoped(call.tenant)
        try:
            if version is None:
                version = int(models.status(name)["active_version"])
            found = models.version(name, version)
        except RegistryError as e:
            return error_reply(e.status, e.code, e.message)
        with service.pool.connection() as conn:
            answer = monitoring.report(conn, call.tenant, name, version, found["profile"],
                                       found["input_schema"], since, until, bucket,
                                       service.settings.drift_min_rows)  # fmt: skip
        return json_reply(200, answer)

    return handle
