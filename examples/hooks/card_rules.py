"""Hooks around the card-fraud model of "Serve your own model" (docs/extending.md). Serve
them with `ferroscore serve --hooks card_rules` from this directory, with the model's schema
marking `account_age_days` as `"x-ferroscore-source": "enrichment"` (and nullable) and
`"additionalProperties": true`.

- `account_age`: callers send the date the account was opened (`"account_opened":
  "2024-03-01"`); the hook supplies `account_age_days` from it (None when the date is absent,
  a missing value for the trees).
- `overlay`: declines amounts over 5,000 whatever the score, with a reason code; refuses
  merchants the business does not score.
- `recent_declines`: a partner's endpoint reading the decision log.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ferroscore.hooks import Context, Incoming, Outcome, Reject, Scored, decide, enrich, route
from ferroscore.pipeline import Call

BLOCKED_MERCHANTS = frozenset({"weapons"})
LARGE_AMOUNT = 5000.0


@enrich("card-fraud")
def account_age(incoming: Incoming, ctx: Context) -> dict[str, list[Any]]:
    """`account_age_days` from the `account_opened` date the caller sends."""
    today = date.today()
    ages: list[Any] = []
    for row in incoming.rows:
        opened = incoming.raw(row.index).get("account_opened")
        try:
            ages.append((today - date.fromisoformat(opened)).days if opened else None)
        except (TypeError, ValueError):
            raise Reject(
                "invalid_date", f"account_opened of row {row.index} is not an ISO date"
            ) from None
    return {"account_age_days": ages}


@decide("card-fraud")
def overlay(scored: Scored, ctx: Context) -> Outcome:
    """Declines large amounts whatever the score; keeps the thresholds' decision otherwise."""
    # Not a category the model knows (it scores as missing): read it as the caller sent it.
    if any(scored.raw(r.index).get("merchant") in BLOCKED_MERCHANTS for r in scored.rows):
        raise Reject("merchant_blocked", "this merchant is not scored", status=403)
    large = [(r.values["amount"] or 0.0) > LARGE_AMOUNT for r in scored.rows]
    return Outcome(
        decisions=["decline" if big else None for big in large],
        reasons=[["R12: amount over 5,000"] if big else None for big in large],
        extra={"rules": "card-rules v1"},
    )


@route("GET", "/v1/ext/card-fraud/declines")
def recent_declines(call: Call, ctx: Context) -> dict[str, Any]:
    """Declines of the card-fraud model in the last hour, from the decision log."""
    if ctx.pool is None:
        raise Reject("unavailable", "the database is not connected", status=409)
    with ctx.pool.connection() as conn:
        # The caller's tenant's decisions only.
        row = conn.execute(
            "SELECT count(*) FROM decisions WHERE model = 'card-fraud' AND decision = 'decline'"
            " AND tenant = %s AND created_at > now() - interval '1 hour'",
            (ctx.tenant or "default",),
        ).fetchone()
    return {"model": "card-fraud", "declines_last_hour": row[0] if row else 0}
