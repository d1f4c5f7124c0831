"""The score path as stages over one `ScoringRequest`, its options parsed once: enrich (the
model's enrichment hook) ▸ score (Rust) ▸ decide (its decision hook) ▸ record (the decision
log) ▸ answer ▸ shadow. The native score route and the V2 infer route run the same stages,
and so does a shadow version (on the shadow thread, with the champion's enrichment).

A request whose model has no hooks runs them all at once on the calling thread: nothing to
wait for but the group commit, which the adapter awaits. A request with hooks runs them as a
coroutine on the process's event loop, where an `async def` hook is awaited in place, a hook
declared `inline=True` is called in place, and any other sync hook runs on the hooks' pool
so that it cannot stall every request (`hooks.Runner.call_async`): no thread waits on
another. Called where no loop awaits (`Call.defer_commit` false: an Idempotency-Key, the
shadow thread), the coroutine runs on the hooks' own loop and the caller waits for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ferroscore._core import Decision, Endpoint, Parsed, new_request_id
from ferroscore.hooks import (
    EXTENSIONS,
    Hook,
    HookFailed,
    HookRefusal,
    Incoming,
    Outcome,
    Scored,
    checked_outcome,
)
from ferroscore.pipeline import Caller, Reply
from ferroscore.serving.service import Service


@dataclass(frozen=True)
class Enrichment:
    """What an enrichment hook supplied for a request: per feature, one value for each of
    the valid `rows` (their indexes), so a shadow version can be scored on the same values."""

    hook: str
    rows: list[int]
    values: Mapping[str, Sequence[Any]]


@dataclass(slots=True)
class ScoringRequest:
    """One scoring of one version: what was asked, and what each stage made of it."""

    endpoint: Endpoint
    body: bytes | str
    ndjson: bool
    partial: bool
    explain: int
    caller: Caller | None
    #: The caller's own id for the request (`X-Request-ID`, or a V2 request's `id`).
    reference: str | None
    #: The version's hooks, if any.
    enricher: Hook[Any] | None = None
    decider: Hook[Any] | None = None
    #: A shadow version's: its decision hook's context says so, and the champion's
    #: enrichment is used instead of asking the hook again.
    shadow: bool = False
    #: The id the decision will carry, fixed before the hooks run so that they can tell it
    #: to whoever they ask; None: the core makes one.
    request_id: str | None = None
    parsed: Parsed | None = None
    enrichment: Enrichment | None = None
    response: bytes = b""
    decision: Decision | None = None
    #: What answers the caller, once a stage has decided it.
    reply: Reply | None = None
    #: Why a hook stopped the request, if one did (`reply` says so to the caller).
    refusal: HookRefusal | None = None

    @property
    def hooked(self) -> bool:
        return self.enricher is not None or self.decider is not None or self.enrichment is not None


def score_now(req: ScoringRequest) -> None:
    """The score stage of a request without hooks: parse, validate and score in one call."""
    req.response, req.decision = req.endpoint.score(
        req.body, ndjson=req.ndjson, partial=req.partial, explain=req.explain,
        request_id=req.request_id, reference=req.reference,
    )  # fmt: skip
    req.reply = Reply(200, req.response)


async def run_hooked(service: Service, req: ScoringRequest) -> None:
    """enrich ▸ score ▸ decide, awaiting the hooks. A refusal, failure or timeout of the
    enrichment answers the request unscored (no decision); of the decision hook, it answers
    as the hook said and the decision is the one scored."""
    req.request_id = req.request_id or new_request_id()
    req.parsed = req.endpoint.prepare(req.body, ndjson=req.ndjson, partial=req.partial)
    try:
        if req.enrichment is not None:
            _check_rows(req.parsed, req.enrichment)
            fill(req.parsed, req.endpoint, req.enrichment, shadow=True)
        elif req.enricher is not None:
            await _enrich(service, req, req.enricher)
    except HookRefusal as e:
        req.reply, req.refusal = e.reply(), e
        return
    req.response, req.decision = req.parsed.finish(
        explain=req.explain, request_id=req.request_id, reference=req.reference
    )
    req.reply = Reply(200, req.response)
    if req.decider is not None:
        try:
            await _decide(service, req, req.decider)
        except HookRefusal as e:
            req.reply, req.refusal = e.reply(), e


def run_blocking(service: Service, req: ScoringRequest) -> None:
    """`run_hooked` where no event loop awaits it: on the hooks' loop, this thread waiting."""
    service.hook_runner.wait_for(run_hooked(service, req))


def hooks_of(service: Service, endpoint: Endpoint) -> tuple[Hook[Any] | None, Hook[Any] | None]:
    """The model's enrichment and decision hooks, if any."""
    hooks = service.hooks
    return hooks.enrich.get(endpoint.name), hooks.decide.get(endpoint.name)


async def _enrich(service: Service, req: ScoringRequest, hook: Hook[Any]) -> None:
    assert req.parsed is not None
    ctx = service.hook_context(req.request_id or "", req.endpoint.name, req.endpoint.version,
                               caller=req.caller)  # fmt: skip
    supplied = await service.hook_runner.call_async(hook, Incoming(req.parsed, req.body,
                                                                   req.ndjson), ctx)  # fmt: skip
    if not isinstance(supplied, Mapping):
        raise HookFailed(f"{hook.name} returned {type(supplied).__name__}, not a mapping")
    req.enrichment = Enrichment(hook.name, req.parsed.valid, supplied)
    fill(req.parsed, req.endpoint, req.enrichment)


async def _decide(service: Service, req: ScoringRequest, hook: Hook[Any]) -> None:
    """The decision hook's final decisions, reasons and extra fields written into the answer,
    and the decision the log records."""
    assert req.decision is not None
    answer: dict[str, Any] = orjson.loads(req.response)
    batch = "scores" in answer
    scored = Scored(req.decision, req.endpoint, req.body, batch, req.ndjson)
    ctx = service.hook_context(req.decision.request_id, req.endpoint.name, req.endpoint.version,
                               caller=req.caller, shadow=req.shadow)  # fmt: skip
    returned = await service.hook_runner.call_async(hook, scored, ctx)
    outcome = checked_outcome(hook, returned, len(scored))
    if outcome is None:
        return
    req.decision = _apply(outcome, scored, req.decision, answer, batch)
    req.reply = Reply(200, _dumps(hook, answer))


def _check_rows(parsed: Parsed, enrichment: Enrichment) -> None:
    if parsed.valid != enrichment.rows:
        raise HookFailed(f"its schema accepts other rows than the champion's, so "
                         f"{enrichment.hook}'s values do not apply")  # fmt: skip


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


def _apply(
    outcome: Outcome, scored: Scored, decision: Decision, answer: dict[str, Any], batch: bool
) -> Decision:
    """Writes the outcome into `answer`; returns the decision with its final decisions. A
    row's None keeps what the answer had for it (the thresholds' decision, TreeSHAP's
    reasons when asked for)."""
    n = decision.n_rows
    if outcome.decisions is not None:
        finals = _per_row(answer, batch, "decision", n)
        for i, d in zip(scored.indexes, outcome.decisions, strict=True):
            if d is not None:
                finals[i] = d
        decision = decision.with_decisions(finals)
        _set(answer, batch, "decision", finals)
    if outcome.reasons is not None and any(r is not None for r in outcome.reasons):
        reasons = _per_row(answer, batch, "reason", n)
        for i, r in zip(scored.indexes, outcome.reasons, strict=True):
            if r is not None:
                reasons[i] = r
        _set(answer, batch, "reason", reasons)
    if outcome.extra is not None:
        answer[EXTENSIONS] = outcome.extra
    return decision


def _per_row(answer: dict[str, Any], batch: bool, key: str, n: int) -> list[Any]:
    had = answer.get(_member(batch, key))
    if had is None:
        return [None] * n
    return list(had) if batch else [had]


def _set(answer: dict[str, Any], batch: bool, key: str, per_row: list[Any]) -> None:
    answer[_member(batch, key)] = per_row if batch else per_row[0]


def _member(batch: bool, key: str) -> str:
    # A batch lists one per row ("decisions", "reasons"); one record has one "decision" and
    # its list of "reasons".
    return key + "s" if batch or key == "reason" else key


def _dumps(hook: Hook[Any], answer: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as e:
        raise HookFailed(f"{hook.name} returned what JSON cannot hold: {e}") from e
