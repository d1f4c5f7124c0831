"""A model's decision hook applied to a scored request: the hook's final decisions, reasons
and extra fields written into the response, and the decision the log records. Only models
with a decision hook come here; the others answer with the core's bytes untouched."""

from __future__ import annotations

from typing import Any

import orjson

from ferroscore._core import Decision, Endpoint
from ferroscore.hooks import (
    EXTENSIONS,
    Hook,
    HookFailed,
    HookRefusal,
    Outcome,
    Scored,
    checked_outcome,
)
from ferroscore.pipeline import Caller, Reply
from ferroscore.service import Service


def decide(
    service: Service,
    hook: Hook[Any],
    endpoint: Endpoint,
    request: bytes | str,
    ndjson: bool,
    body: bytes,
    decision: Decision,
    *,
    caller: Caller | None,
    shadow: bool = False,
    inline: bool = False,
) -> tuple[Reply, Decision]:
    """The reply to send and the decision to log, for the `request` body whose response is
    `body`. A refusal, failure or timeout of the hook answers 4xx, 500 or 503 and logs the
    decision as scored. `inline`: on this thread, a `Runner.chain` job's, which keeps the
    budget."""
    answer: dict[str, Any] = orjson.loads(body)
    batch = "scores" in answer
    scored = Scored(decision, endpoint, request, batch, ndjson)
    ctx = service.hook_context(
        decision.request_id, endpoint.name, endpoint.version, caller=caller, shadow=shadow
    )
    try:
        runner = service.hook_runner
        returned = (runner.call if inline else runner.run)(hook, scored, ctx)
        outcome = checked_outcome(hook, returned, len(scored))
        if outcome is None:
            return Reply(200, body), decision
        final = _apply(outcome, scored, decision, answer, batch)
        return Reply(200, _dumps(hook, answer)), final
    except HookRefusal as e:
        return e.reply(), decision


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
