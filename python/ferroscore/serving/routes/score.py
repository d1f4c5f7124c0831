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
from ferroscore.models.catalog import Served
from ferroscore.observability.metrics import count_failures, count_warnings
from ferroscore.pipeline import Call, Handler, Reply, digits, error_reply, later, query_error
from ferroscore.serving.routes.shadow import shadow_job
from ferroscore.serving.scoring import ScoringRequest, hooks_of, run_blocking, run_hooked, score_now
from ferroscore.serving.service import Service

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
    """The route: the request's options and its model's hooks read once into a
    `ScoringRequest`, then the stages of `ferroscore.serving.scoring`."""
    served_to = service.catalog.of

    def handle(call: Call) -> Reply:
        served = served_to(call.tenant).get(name := call.params["name"])
        if served is None:
            return model_not_found(name)
        req = _request(service, call, served)
        if isinstance(req, Reply):
            return req
        if not req.hooked:
            try:
                score_now(req)
            except RequestError as e:
                return request_error_reply(e)
            return recorded(service, call, served, req)
        if call.defer_commit:
            return later(_hooked(service, call, served, req))
        try:
            run_blocking(service, req)
        except RequestError as e:
            return request_error_reply(e)
        return recorded(service, call, served, req)

    return handle


def _request(service: Service, call: Call, served: Served) -> ScoringRequest | Reply:
    """The request's options (NDJSON, `partial`, `explain`), or the 400 of a bad one."""
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
    enricher, decider = hooks_of(service, served.champion)
    return ScoringRequest(served.champion, call.body, ndjson, partial, explain, call.caller,
                          call.request_id, enricher, decider)  # fmt: skip


async def _hooked(service: Service, call: Call, served: Served, req: ScoringRequest) -> Reply:
    try:
        await run_hooked(service, req)
    except RequestError as e:
        return request_error_reply(e)
    return recorded(service, call, served, req)


def recorded(service: Service, call: Call, served: Served, req: ScoringRequest) -> Reply:
    """The record ▸ answer ▸ shadow stages: the decision appended to the log (its ticket
    left in the reply for the adapter to await, or waited for here), the answer, and the
    shadow's scoring queued on its share of requests."""
    reply = req.reply
    assert reply is not None
    decision = req.decision
    if decision is None:  # refused before it was scored: nothing to record
        return reply
    log, tenant = service.decisions, call.tenant
    if decision.warned and service.settings.metrics:
        count_warnings(decision.model, decision.warnings)
    try:
        if call.defer_commit:
            reply.commit = log.record_nowait(decision, "champion", tenant)
        else:
            log.record(decision, "champion", tenant)
    except (SpoolFullError, OSError) as e:
        return unrecorded(e)
    if call.request_id is None:
        call.request_id = decision.request_id
    if served.shadow is not None and random.random() < served.share:
        job = shadow_job(service, served.shadow, req, decision.request_id)
        service.shadow.submit(served.shadow, job, tenant)
    return reply
