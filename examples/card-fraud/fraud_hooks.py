"""The hooks of the card-fraud example (README.md beside this file): velocity features from
the decision log before scoring, and a rule overlay after it.

Serve them with `FERROSCORE_HOOKS=fraud_hooks` and this directory on the Python path. The
model's schema (`schema.json`) marks `card_id` and `device_id` as context, so every decision
in the log carries them, and `card_count_1h`, `card_amount_1h` and `device_new_today` as
supplied by enrichment, so callers cannot send them.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import ConnectionPool

from ferroscore.hooks import Context, Incoming, Outcome, Reject, Scored, decide, enrich

MODEL = "card-fraud"
LARGE_AMOUNT = 5000.0
WINDOW = timedelta(hours=1)
#: The decision log's own index serves lookups by request; these serve lookups by entity.
INDEXES = [
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS decisions_card_fraud_{key} ON decisions"
    f" ((context->>'{key}_id'), created_at) WHERE model = '{MODEL}' AND role = 'champion'"
    for key in ("card", "device")
]

log = logging.getLogger(__name__)
_indexed = threading.Event()
_indexing = threading.Lock()


@enrich(MODEL, budget_ms=500)
async def velocity(incoming: Incoming, ctx: Context) -> dict[str, list[Any]]:
    """Each transaction's card activity in the hour before it and whether its device is
    new today, from the decision log and from the rows of the same request before it.
    Async: its two queries are awaited on the serving process's event loop, holding no
    thread while the database answers."""
    if ctx.pool is None:
        raise Reject("unavailable", "the decision log is not connected", status=503)
    _create_indexes(ctx.pool)
    cards = [str(r.values["card_id"]) for r in incoming.rows]
    devices = [str(r.values["device_id"]) for r in incoming.rows]
    now = datetime.now(UTC)
    # The caller's tenant's log only: another tenant's card ids are other cards.
    tenant = ctx.tenant or "default"
    async with ctx.connection() as conn:
        card_history, first_seen = await _history(conn, tenant, set(cards), set(devices), now)
    counts: list[Any] = []
    sums: list[Any] = []
    new_today: list[Any] = []
    # Earlier rows of a batch count as the card's activity too: they are earlier attempts.
    in_request: dict[str, list[float]] = defaultdict(list)
    for row, card, device in zip(incoming.rows, cards, devices, strict=True):
        count, spent = card_history.get(card, (0, 0.0))
        earlier = in_request[card]
        counts.append(count + len(earlier))
        sums.append(round(spent + sum(earlier), 2))
        seen = first_seen.get(device)
        new_today.append(seen is None or seen.date() == now.date())
        earlier.append(float(row.values["amount"]))
    return {"card_count_1h": counts, "card_amount_1h": sums, "device_new_today": new_today}


async def _history(
    conn: AsyncConnection[Any], tenant: str, cards: set[str], devices: set[str], now: datetime
) -> tuple[dict[str, tuple[int, float]], dict[str, datetime]]:
    """Per card, its decisions and their amounts since `now - WINDOW`; per device, when the
    log first saw it. Two indexed queries per request, whatever its number of rows."""
    by_card = await (
        await conn.execute(
            # A logged row's features are the model's inputs, in its version's order of names.
            "SELECT d.context->>'card_id', count(*),"
            " coalesce(sum(d.features[array_position(v.features, 'amount')]), 0)"
            " FROM decisions d JOIN version_features v"
            " ON (v.tenant, v.name, v.version) = (d.tenant, d.model, d.version)"
            " WHERE d.model = %s AND d.role = 'champion' AND d.tenant = %s"
            " AND d.context->>'card_id' = ANY(%s) AND d.created_at > %s GROUP BY 1",
            (MODEL, tenant, list(cards), now - WINDOW),
        )
    ).fetchall()
    by_device = await (
        await conn.execute(
            "SELECT context->>'device_id', min(created_at) FROM decisions"
            " WHERE model = %s AND role = 'champion' AND tenant = %s"
            " AND context->>'device_id' = ANY(%s) GROUP BY 1",
            (MODEL, tenant, list(devices)),
        )
    ).fetchall()
    return {c: (int(n), float(s)) for c, n, s in by_card}, {d: t for d, t in by_device}


def _create_indexes(pool: ConnectionPool) -> None:
    """Creates the example's indexes once per process, in the background: `CONCURRENTLY`
    does not block the decision log's writes, and requests do not wait for it."""
    if _indexed.is_set() or not _indexing.acquire(blocking=False):
        return

    def create() -> None:
        try:
            with pool.connection() as conn:
                conn.autocommit = True
                for statement in INDEXES:
                    conn.execute(statement)
            _indexed.set()
        except Exception:
            log.exception("could not create the card-fraud indexes; lookups stay unindexed")
        finally:
            _indexing.release()

    threading.Thread(target=create, name="card-fraud-indexes", daemon=True).start()


@decide(MODEL, inline=True)
def overlay(scored: Scored, ctx: Context) -> Outcome:
    """Declines a large amount on a device first seen today, whatever the score; keeps the
    thresholds' decision otherwise."""
    flagged = [
        r.values["amount"] > LARGE_AMOUNT and r.values["device_new_today"] for r in scored.rows
    ]
    reasons: Sequence[Any] = [
        [{"code": "R12", "text": "amount over 5,000 on a device first seen today"}] if f else None
        for f in flagged
    ]
    return Outcome(
        decisions=["decline" if f else None for f in flagged],
        reasons=reasons,
        extra={"rules": "card-fraud rules v1", "overridden": sum(flagged)},
    )
