"""A shadow version scored as its champion was, on the process's shadow thread after the
answer, through the same stages (`ferroscore.serving.scoring`): the same body; the values the
champion's enrichment hook supplied (asking the hook again would see the champion's own
decision in the log, and cost its lookups twice); then the model's decision hook, whose
context says `shadow`. Its decision is logged with the role "shadow"; a shadow that cannot be
scored so is logged as a warning, never answered."""

from __future__ import annotations

from dataclasses import replace

from ferroscore._core import Decision, Endpoint
from ferroscore.serving.scoring import ScoringRequest, hooks_of, run_blocking, score_now
from ferroscore.serving.service import Service, ShadowJob


def shadow_job(
    service: Service, endpoint: Endpoint, champion: ScoringRequest, request_id: str
) -> ShadowJob:
    """The scoring of `endpoint` for the champion's request `request_id`, to run later."""

    def run() -> Decision | None:
        _, decider = hooks_of(service, endpoint)
        req = replace(
            champion, endpoint=endpoint, explain=0, enricher=None, decider=decider,
            shadow=True, request_id=request_id, parsed=None, response=b"", decision=None,
            reply=None, refusal=None,
        )  # fmt: skip
        if not req.hooked:
            score_now(req)
        else:
            run_blocking(service, req)
            if req.decision is None and req.refusal is not None:
                raise req.refusal
        return req.decision

    return run
