"""A model's enrichment hook applied to a request: parsed and validated, completed with the
hook's values (checked by the same rules as a caller's), then scored, then given to the
model's decision hook if it has one. Only models with an enrichment hook come here. A request
whose enrichment fails is not scored: it gets 500 or 503 and there is no decision to log."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ferroscore._core import Decision, Endpoint, Parsed
from ferroscore.hooks import Hook, HookFailed, HookRefusal, HookTimeout, Incoming, Progress
from ferroscore.pipeline import Caller, Reply
from ferroscore.routes.decide import decide
from ferroscore.service import Service


@dataclass(frozen=True)
class Enrichment:
    """What an enrichment hook supplied for a request: per feature, one value for each of
    the valid `rows` (their indexes), so a shadow version can be scored on the same values."""

    hook: str
    rows: list[int]
    values: Mapping[str, Sequence[Any]]


def enrich(
    service: Service,
    hook: Hook[Any],
    decider: Hook[Any] | None,
    endpoint: Endpoint,
    body: bytes | str,
    *,
    ndjson: bool,
    partial: bool,
    explain: int,
    caller: Caller | None,
    reference: str | None = None,
) -> tuple[Reply, Decision | None, Enrichment | None]:
    """The reply, the decision to log (None when the request was not scored) and what the
    hook supplied. The enrichment, the scoring and the `decider` (the model's decision hook,
    if any) run as one job on the hooks' pool: one hand-off between threads, not two. Raises
    the core's `RequestError` for the caller's body; a refusal, failure or timeout of a hook
    is the reply."""
    parsed = endpoint.prepare(body, ndjson=ndjson, partial=partial)
    # The request id the decision will carry, so the hook can tell it to whoever it asks.
    request_id = str(uuid.uuid4())
    runner = service.hook_runner

    def job(progress: Progress) -> tuple[Reply, Decision, Enrichment]:
        ctx = service.hook_context(request_id, endpoint.name, endpoint.version, caller=caller)
        supplied = runner.call(hook, Incoming(parsed, body, ndjson), ctx)
        if not isinstance(supplied, Mapping):
            raise HookFailed(f"{hook.name} returned {type(supplied).__name__}, not a mapping")
        enrichment = Enrichment(hook.name, parsed.valid, supplied)
        fill(parsed, endpoint, enrichment)
        progress.enter(decider)
        response, decision = parsed.finish(
            explain=explain, request_id=request_id, reference=reference
        )
        if decider is None:
            return Reply(200, response), decision, enrichment
        progress.partial = (decision, enrichment)
        reply, decision = decide(service, decider, endpoint, body, ndjson, response, decision,
                                 caller=caller, inline=True)  # fmt: skip
        return reply, decision, enrichment

    try:
        return runner.chain(hook, job)
    except HookTimeout as e:
        # Past the decision hook's budget, the request was scored: its decision is logged.
        decision, enrichment = e.partial or (None, None)
        return e.reply(), decision, enrichment
    except HookRefusal as e:
        return e.reply(), None, None


def fill(
    parsed: Parsed, endpoint: Endpoint, enrichment: Enrichment, *, shadow: bool = False
) -> None:
    """Writes the supplied values into `parsed`, each checked by `endpoint`'s schema; raises
    `HookFailed` naming the hook and what is wrong. For a `shadow` version, values of
    features its schema does not enrich are left out rather than refused."""
    name, supplied = enrichment.hook, enrichment.values
    expected = dict(endpoint.enriched_features)
    if shadow:
        supplied = {k: v for k, v in supplied.items() if k in expected}
    unknown = [feature for feature in supplied if feature not in expected]
    if unknown:
        raise HookFailed(f"{name} supplied {unknown[0]!r}, which the schema does not "
                         "mark as enriched")  # fmt: skip
    missing = [f for f, required in expected.items() if required and f not in supplied]
    if missing:
        raise HookFailed(f"{name} did not supply the required feature {missing[0]!r}")
    for feature, values in supplied.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise HookFailed(f"{name}: {feature!r} needs one value per row, in a list")
        try:
            parsed.enrich(feature, list(values))
        except (ValueError, TypeError) as e:
            raise HookFailed(f"{name} supplied a bad value: {e}") from e
