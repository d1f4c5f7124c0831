"""Authentication, scopes and rate limits: the first thing every non-public route runs.

A caller sends `Authorization: Bearer <token>` (or `X-API-Key: <token>`): an API key
(`ferroscore.access.keys`) or, when configured, a JWT (`ferroscore.access.jwts`). Missing,
unknown, expired or revoked → 401 with `WWW-Authenticate` (RFC 6750); a key without the
route's scope → 403; over its rate → 429 with `Retry-After` and the RateLimit headers. A key
known to the process costs one dict lookup and a clock read; the RateLimit headers go on
every answer to a rate-limited key.

With `FERROSCORE_AUTH=false` (a trusted network, a gateway that authenticates) every caller
is the `default` tenant with every scope."""

from __future__ import annotations

import logging
import time

import jwt

from ferroscore.access import keys, ratelimit
from ferroscore.access.jwts import Verifier
from ferroscore.access.ratelimit import RateLimits
from ferroscore.models.registry import DEFAULT_TENANT
from ferroscore.pipeline import Call, Caller, Handler, Reply, Route, error_reply

log = logging.getLogger(__name__)

PUBLIC = "public"
#: Who calls when authentication is off.
ANONYMOUS = Caller("anonymous", DEFAULT_TENANT, frozenset(keys.SCOPES))
_REALM = 'Bearer realm="ferroscore"'


class Guard:
    """Wraps each route's handler with the checks its scope needs."""

    def __init__(
        self, enabled: bool, ring: keys.KeyRing, verifier: Verifier, limits: RateLimits
    ) -> None:
        self.enabled = enabled
        self._ring = ring
        self._verifier = verifier
        self._limits = limits

    def __call__(self, route: Route, handler: Handler) -> Handler:
        if route.scope == PUBLIC:
            return handler
        if not self.enabled:
            return _as_anonymous(handler)
        scope, caller_of, limits = route.scope, self._caller, self._limits

        def handle(call: Call) -> Reply:
            token = _token(call)
            if token is None:
                return _unauthenticated()
            caller = caller_of(token)
            if isinstance(caller, Reply):
                return caller
            if scope not in caller.scopes:
                return _forbidden(scope)
            call.caller = caller
            if caller.rate_per_s is None:
                return handler(call)
            verdict = limits.acquire(caller.identity, caller.rate_per_s, caller.burst)
            quota = ratelimit.headers(verdict, caller.rate_per_s, caller.burst)
            reply = handler(call) if verdict.allowed else _too_many(caller)
            reply.headers = {**reply.headers, **quota}
            return reply

        return handle

    def identify(self, call: Call) -> Caller | None:
        """The caller, when the request carries valid credentials; None otherwise, never a
        refusal (for the public routes whose answer depends on who asks)."""
        if not self.enabled:
            return ANONYMOUS
        token = _token(call)
        found = self._caller(token) if token is not None else None
        return found if isinstance(found, Caller) else None

    def _caller(self, token: str) -> Caller | Reply:
        """The caller of `token`: from memory while it is known and unexpired, else looked
        up; a refusal when it is not valid."""
        known = self._ring.known.get(token) or self._verifier.known.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        return self._identify(token)

    def _identify(self, token: str) -> Caller | Reply:
        if keys.looks_like_key(token) or not self._verifier.configured:
            try:
                caller = self._ring.look_up(token)
            except keys.KeysUnavailableError as e:
                log.warning("a key could not be checked: %s", e)
                reply = error_reply(503, "auth_unavailable",
                                    "the key could not be checked; retry shortly")  # fmt: skip
                reply.headers = {**reply.headers, "retry-after": "1"}
                return reply
            return caller if caller is not None else _invalid("unknown, expired or revoked key")
        try:
            return self._verifier.verify(token)
        except jwt.InvalidTokenError as e:
            return _invalid(f"the token is not valid: {e}")


def _token(call: Call) -> str | None:
    """The token of `Authorization: Bearer` (maybe empty) or, without it, of `X-API-Key`."""
    headers = call.headers
    token = headers.get("authorization")
    if token is not None and token[:6].lower() == "bearer":
        return token[6:].strip()
    return headers.get("x-api-key")


def _as_anonymous(handler: Handler) -> Handler:
    def handle(call: Call) -> Reply:
        call.caller = ANONYMOUS
        return handler(call)

    return handle


def _unauthenticated() -> Reply:
    reply = error_reply(401, "unauthenticated",
                        "send an API key: Authorization: Bearer <key>, or X-API-Key")  # fmt: skip
    reply.headers = {**reply.headers, "www-authenticate": _REALM}
    return reply


def _invalid(message: str) -> Reply:
    reply = error_reply(401, "invalid_token", message)
    reply.headers = {**reply.headers, "www-authenticate": f'{_REALM}, error="invalid_token"'}
    return reply


def _forbidden(scope: str) -> Reply:
    reply = error_reply(403, "insufficient_scope", f"this route needs the {scope!r} scope")
    challenge = f'{_REALM}, error="insufficient_scope", scope="{scope}"'
    reply.headers = {**reply.headers, "www-authenticate": challenge}
    return reply


def _too_many(caller: Caller) -> Reply:
    return error_reply(429, "rate_limited",
                       f"over this key's limit of {caller.rate_per_s:g} requests/s")  # fmt: skip
