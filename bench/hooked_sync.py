"""The hooks of the stack "ferroscore-hooks-sync": `hooked`'s two, as plain functions, so
each runs on the hooks' thread pool (what a sync hook costs a request)."""

from __future__ import annotations

from typing import Any

from hooked import HOOKED_MODEL, marked, supplied

from ferroscore.hooks import Context, Incoming, Outcome, Scored, decide, enrich


@enrich(HOOKED_MODEL)
def radius(incoming: Incoming, ctx: Context) -> dict[str, list[Any]]:
    return supplied(incoming)


@decide(HOOKED_MODEL)
def mark(scored: Scored, ctx: Context) -> Outcome:
    return marked(scored)
