"""A shadow version scored as its champion was, on the process's shadow thread after the
answer: the same body; the values the champion's enrichment hook supplied (asking the hook
again would see the champion's own decision in the log, and cost its lookups twice); then
the model's decision hook, whose context says `shadow`. Its decision is logged with the
role "shadow"; a shadow that cannot be scored so is logged as a warning, never answered."""

from __future__ import annotations

from ferroscore._core import Decision, Endpoint
from ferroscore.hooks import HookFailed
from ferroscore.pipeline import Caller
from ferroscore.routes.decide import decide
from ferroscore.routes.enrich import Enrichment, fill
from ferroscore.service import Service, ShadowJob


def shadow_job(
    service: Service,
    endpoint: Endpoint,
    body: bytes | str,
    *,
    ndjson: bool,
    partial: bool,
    request_id: str,
    reference: str | None,
    enrichment: Enrichment | None,
    caller: Caller | None,
) -> ShadowJob:
    """The scoring of `endpoint` for the request `request_id`, to run later."""

    def run() -> Decision | None:
        if enrichment is None:
            response, decision = endpoint.score(
                body, ndjson=ndjson, partial=partial, request_id=request_id, reference=reference
            )
        else:
            parsed = endpoint.prepare(body, ndjson=ndjson, partial=partial)
            if parsed.valid != enrichment.rows:
                raise HookFailed(f"its schema accepts other rows than the champion's, so "
                                 f"{enrichment.hook}'s values do not apply")  # fmt: skip
            fill(parsed, endpoint, enrichment, shadow=True)
            response, decision = parsed.finish(request_id=request_id, reference=reference)
        hook = service.hooks.decide.get(endpoint.name)
        if hook is not None:
            _, decision = decide(
                service, hook, endpoint, body, ndjson, response, decision, caller=caller,
                shadow=True,
            )  # fmt: skip
        return decision

    return run
