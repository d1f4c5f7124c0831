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
from ferroscore.pipeline import Reply
from ferroscore.service import Service


def decide(
    service: Service,
    hook: Hook[Any],
    endpoint: Endpoint,
    request: bytes | str,
    ndjson: bool,
    body: bytes,
    decision: Decision,
) -> tuple[Reply, Decision]:
    """The reply to send and the decision to log, for the `request` body whose response is
    `body`. A refusal, failure or timeout of the hook answers 4xx, 500 or 503 and logs the
    decision as scored."""
    answer: dict[str, Any] = orjson.loads(body)
    batch = "scores" in answer
    scored = Scored(decision, endpoint.model, request, batch, ndjson)
    ctx = service.hook_context(decision.request_id, endpoint.name, endpoint.version)
    try:
        outcome = checked_outcome(
            hook, service.hook_runner.run(hook, scored, ctx), len(scored.rows)
        )
        if outcome is None:
            return Reply(200, body), decision
        final = _apply(outcome, scored, decision, answer, batch)
        return Reply(200, _dumps(hook, answer)), final
    except HookRefusal as e:
        return e.reply(), decision


def _apply(
    outcome: Outcome, scored: Scored, decision: Decision, answer: dict[str, Any], batch: bool
) -> Decision:
    """Writes the outcome into `answer`; returns the decision with its final decisions."""
    n = decision.n_rows
    if outcome.decisions is not None:
        finals: list[str | None] = [None] * n
        for row, d in zip(scored.rows, outcome.decisions, strict=True):
            finals[row.index] = row.decision if d is None else d
        decision = decision.with_decisions(finals)
        _set(answer, batch, "decision", finals)
    if outcome.reasons is not None:
        reasons: list[Any] = [None] * n
        for row, r in zip(scored.rows, outcome.reasons, strict=True):
            reasons[row.index] = r
        _set(answer, batch, "reason", reasons)
    if outcome.extra is not None:
        answer[EXTENSIONS] = outcome.extra
    return decision


def _set(answer: dict[str, Any], batch: bool, key: str, per_row: list[Any]) -> None:
    # A batch lists one per row ("decisions", "reasons"); one record has one.
    if batch:
        answer[key + "s"] = per_row
    elif key == "reason":
        answer["reasons"] = per_row[0]
    else:
        answer[key] = per_row[0]


def _dumps(hook: Hook[Any], answer: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as e:
        raise HookFailed(f"{hook.name} returned what JSON cannot hold: {e}") from e
