"""`POST /v1/models/{name}/score`: the body goes to the Rust core untouched; Python only picks
the endpoint from the catalog snapshot, maps refusals to 4xx, hands the decision to the log
and, on its share of requests, the body to the shadow version.

One record `{"features": {...}}`, a batch `{"rows": [...], "partial": bool}`, or NDJSON
(`Content-Type: application/x-ndjson`, one record per line; `?partial=true`). `"explain": k`
in the body or `?explain=k` adds each row's top-k reasons."""

from __future__ import annotations

import random

from ferroscore._core import (
    MalformedRequestError,
    PayloadTooLargeError,
    RequestError,
    SpoolFullError,
)
from ferroscore.metrics import count_failures
from ferroscore.pipeline import Call, Handler, Reply, digits, error_reply, query_error
from ferroscore.routes.decide import decide
from ferroscore.routes.enrich import enrich
from ferroscore.routes.shadow import shadow_job
from ferroscore.service import Service

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def model_not_found(name: str) -> Reply:
    return error_reply(404, "model_not_found", f"no active model named {name!r}")


def request_error_reply(e: RequestError) -> Reply:
    """Maps a refused body to 400 (syntax), 413 (size) or 422 (schema)."""
    errors: list[dict[str, str]] = getattr(e, "errors", [])
    count_failures(errors, "refused")
    if isinstance(e, MalformedRequestError):
        return error_reply(400, "malformed_json", str(e), errors)
    if isinstance(e, PayloadTooLargeError):
        return error_reply(413, "payload_too_large", str(e), errors)
    return error_reply(422, "validation_failed", str(e), errors)


def unrecorded(e: Exception) -> Reply:
    """The decision could not be recorded, so the answer is withheld: 503, try again."""
    full = isinstance(e, SpoolFullError)
    code = "decision_log_full" if full else "decision_log_unavailable"
    reply = error_reply(503, code, f"the decision could not be recorded, so it is not "
                        f"answered; try again ({e})")  # fmt: skip
    reply.headers = {**reply.headers, "retry-after": "1"}
    return reply


def score(service: Service) -> Handler:
    served_to, record = service.catalog.of, service.decisions.record
    # None without hooks: the hot path then pays one comparison for each kind.
    hooked = service.hooks.decide or None
    enriched = service.hooks.enrich or None

    def handle(call: Call) -> Reply:
        tenant = call.tenant
        served = served_to(tenant).get(name := call.params["name"])
        if served is None:
            return model_not_found(name)
        ndjson = False
        if (media := call.headers.get("content-type")) is not None:
            ndjson = media.split(";", 1)[0].strip().lower() in NDJSON_TYPES
        partial = False
        query = call.query
        if (flag := query.get("partial", None)) is not None:
            if flag.lower() not in _FLAGS:
                return query_error("partial", flag, "use true or false")
            partial = _FLAGS[flag.lower()]
        explain = 0
        if (k := query.get("explain", None)) is not None:
            width = served.champion.model.n_features
            if not (digits(k) and int(k) <= width):
                return query_error("explain", k, f"an integer from 0 to {width}")
            explain = int(k)
        enrichment = None
        decider = hooked.get(name) if hooked is not None else None
        try:
            if enriched is not None and (enricher := enriched.get(name)) is not None:
                reply, scored, enrichment = enrich(
                    service, enricher, decider, served.champion, call.body,
                    ndjson=ndjson, partial=partial, explain=explain, caller=call.caller,
                    reference=call.request_id,
                )  # fmt: skip
                if scored is None:
                    return reply
                decision = scored
            else:
                body, decision = served.champion.score(
                    call.body, ndjson=ndjson, partial=partial, explain=explain,
                    reference=call.request_id,
                )  # fmt: skip
                if decider is not None:
                    reply, decision = decide(
                        service, decider, served.champion, call.body, ndjson, body, decision,
                        caller=call.caller,
                    )  # fmt: skip
                else:
                    reply = Reply(200, body)
            record(decision, "champion", tenant)
        except RequestError as e:
            return request_error_reply(e)
        except (SpoolFullError, OSError) as e:
            return unrecorded(e)
        if call.request_id is None:
            call.request_id = decision.request_id
        if served.shadow is not None and random.random() < served.share:
            job = shadow_job(service, served.shadow, call.body, ndjson=ndjson, partial=partial,
                             request_id=decision.request_id, reference=decision.reference,
                             enrichment=enrichment,
                             caller=call.caller)  # fmt: skip
            service.shadow.submit(served.shadow, job, tenant)
        return reply

    return handle
