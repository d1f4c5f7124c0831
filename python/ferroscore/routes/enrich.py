"""A model's enrichment hook applied to a request: parsed and validated, completed with the
hook's values (checked by the same rules as a caller's), then scored. Only models with an
enrichment hook come here. A request whose enrichment fails is not scored: it gets 500 or 503
and there is no decision to log."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ferroscore._core import Decision, Endpoint
from ferroscore.hooks import Hook, HookFailed, Incoming
from ferroscore.service import Service


def enrich(
    service: Service,
    hook: Hook[Any],
    endpoint: Endpoint,
    body: bytes | str,
    *,
    ndjson: bool,
    partial: bool,
    explain: int,
) -> tuple[bytes, Decision]:
    """The response bytes and the decision, as `Endpoint.score` gives them. Raises the
    core's `RequestError` for the caller's body, and `Reject`, `HookTimeout` or `HookFailed`
    for the hook."""
    parsed = endpoint.prepare(body, ndjson=ndjson, partial=partial)
    incoming = Incoming(parsed, body, ndjson)
    # The request id the decision will carry, so the hook can tell it to whoever it asks.
    request_id = str(uuid.uuid4())
    ctx = service.hook_context(request_id, endpoint.name, endpoint.version)
    supplied = service.hook_runner.run(hook, incoming, ctx)
    if not isinstance(supplied, Mapping):
        raise HookFailed(f"{hook.name} returned {type(supplied).__name__}, not a mapping")
    expected = dict(endpoint.enriched_features)
    unknown = [name for name in supplied if name not in expected]
    if unknown:
        raise HookFailed(f"{hook.name} supplied {unknown[0]!r}, which the schema does not "
                         "mark as enriched")  # fmt: skip
    missing = [name for name, required in expected.items() if required and name not in supplied]
    if missing:
        raise HookFailed(f"{hook.name} did not supply the required feature {missing[0]!r}")
    for name, values in supplied.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise HookFailed(f"{hook.name}: {name!r} needs one value per row, in a list")
        try:
            parsed.enrich(name, list(values))
        except (ValueError, TypeError) as e:
            raise HookFailed(f"{hook.name} supplied a bad value: {e}") from e
    return parsed.finish(explain=explain, request_id=request_id)
