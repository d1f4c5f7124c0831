"""Idempotency keys, with Stripe's semantics, so a client can retry a score or a lifecycle
change without it happening twice.

A request with an `Idempotency-Key` header claims the key in PostgreSQL (so it holds across
processes and restarts) before it runs:

- the first request with a key runs, and its response (status, headers, body) is kept for
  `FERROSCORE_IDEMPOTENCY_TTL_S` (24 h by default);
- a retry with the same key and the same request (method, path, query, body) gets that
  response again, byte for byte and with the first one's `X-Request-ID`, with
  `Idempotent-Replayed: true`, and runs nothing: no
  second decision is logged, no second version registered;
- the same key with a different request is refused (422 `idempotency_key_reused`);
- a retry while the first is still running is refused (409
  `idempotency_request_in_progress`, `Retry-After: 1`); a claim whose process died is taken
  over after `LEASE_S`;
- a response the client should retry (5xx: a hook timing out, the database away) is not
  kept: the key is released, and the retry runs.

Keys are scoped to the caller's API key (`anonymous` with authentication off). Without the
header, a request pays one header lookup. Without the database, a request with the header
gets 503: running it unguarded would break the promise."""

from __future__ import annotations

import hashlib
import logging
import random
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from ferroscore.pipeline import Call, Handler, Reply, error_reply
from ferroscore.serving.service import Service

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
REPLAYED = "idempotent-replayed"
REQUEST_ID = "x-request-id"
#: Longest key accepted, in characters.
MAX_KEY = 255
#: An unanswered claim older than this was abandoned (its process died); a retry takes it.
LEASE_S = 60
#: Share of new claims that also delete a batch of expired keys.
_SWEEP_SHARE = 0.01

_CLAIM = (
    "INSERT INTO idempotency_keys (scope, key, fingerprint, lease_until, expires_at)"
    " VALUES (%(scope)s, %(key)s, %(fingerprint)s, now() + make_interval(secs => %(lease)s),"
    " now() + make_interval(secs => %(ttl)s))"
    " ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
    " status = NULL, headers = NULL, body = NULL, created_at = now(),"
    " lease_until = EXCLUDED.lease_until, expires_at = EXCLUDED.expires_at"
    # Take over only an expired key, or an abandoned claim of the same request.
    " WHERE idempotency_keys.expires_at < now() OR (idempotency_keys.status IS NULL"
    " AND idempotency_keys.lease_until < now()"
    " AND idempotency_keys.fingerprint = EXCLUDED.fingerprint)"
    " RETURNING 1"
)
_EXISTING = (
    "SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE scope = %s AND key = %s"
)
_STORE = (
    "UPDATE idempotency_keys SET status = %s, headers = %s, body = %s"
    " WHERE scope = %s AND key = %s AND fingerprint = %s"
)
_RELEASE = "DELETE FROM idempotency_keys WHERE scope = %s AND key = %s AND fingerprint = %s"
_SWEEP = (
    "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys"
    " WHERE expires_at < now() LIMIT 1000)"
)


class Keys:
    """Wraps handlers so that their requests honour `Idempotency-Key`."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def __call__(self, handler: Handler) -> Handler:
        def handle(call: Call) -> Reply:
            key = call.headers.get(HEADER)
            if key is None:
                return handler(call)
            return self._once(key, call, handler)

        return handle

    def _once(self, key: str, call: Call, handler: Handler) -> Reply:
        if not 0 < len(key) <= MAX_KEY or not key.isascii() or not key.isprintable():
            return error_reply(400, "invalid_idempotency_key",
                               f"an Idempotency-Key is 1 to {MAX_KEY} printable ASCII "
                               "characters")  # fmt: skip
        scope = _scope(call)
        fingerprint = _fingerprint(call)
        try:
            claimed = self._claim(scope, key, fingerprint)
        except psycopg.Error as e:
            log.warning("idempotency key %r not claimed: %s", key, e)
            return _unavailable()
        if claimed is not None:
            # A replay is the first answer, its request id too.
            call.request_id = claimed.headers.get(REQUEST_ID, call.request_id)
            return claimed
        # The response is kept once it may be sent: its decision must be on disk first.
        call.defer_commit = False
        reply = handler(call)
        reply.headers = {**reply.headers, REQUEST_ID: call.identified()}
        try:
            self._settle(scope, key, fingerprint, reply)
        except psycopg.Error as e:
            # The request ran: answer it; a retry within the lease gets 409, then runs again.
            log.error("idempotency key %r: the response was not kept: %s", key, e)
        return reply

    def _claim(self, scope: str, key: str, fingerprint: bytes) -> Reply | None:
        """None when this request owns the key and should run; else the reply to give."""
        params = {"scope": scope, "key": key, "fingerprint": fingerprint, "lease": LEASE_S,
                  "ttl": self._service.settings.idempotency_ttl_s}  # fmt: skip
        with self._service.pool.connection() as conn:
            if conn.execute(_CLAIM, params).fetchone() is not None:
                if random.random() < _SWEEP_SHARE:
                    conn.execute(_SWEEP)
                return None
            row = conn.execute(_EXISTING, (scope, key)).fetchone()
        if row is None:
            # Released (or swept) between the two statements: the retry may run.
            return self._claim(scope, key, fingerprint)
        stored_fingerprint, status, headers, body = row
        if bytes(stored_fingerprint) != fingerprint:
            message = "this Idempotency-Key was used with a different request"
            return error_reply(422, "idempotency_key_reused", message)
        if status is None:
            reply = error_reply(409, "idempotency_request_in_progress",
                                "a request with this Idempotency-Key is still running")  # fmt: skip
            reply.headers = {**reply.headers, "retry-after": "1"}
            return reply
        return Reply(status, bytes(body), {**headers, REPLAYED: "true"})

    def _settle(self, scope: str, key: str, fingerprint: bytes, reply: Reply) -> None:
        with self._service.pool.connection() as conn:
            if reply.status >= 500:
                conn.execute(_RELEASE, (scope, key, fingerprint))
            else:
                conn.execute(_STORE, (reply.status, Jsonb(reply.headers), reply.body, scope,
                                      key, fingerprint))  # fmt: skip


def _scope(call: Call) -> str:
    """The caller (tenant and key) an idempotency key belongs to: two callers' keys never
    meet, even two tenants' JWTs with the same subject."""
    return call.caller.identity if call.caller is not None else ""


def _fingerprint(call: Call) -> bytes:
    query: Any = call.query
    pairs = query.to_dict() if hasattr(query, "to_dict") else dict(query)
    digest = hashlib.sha256()
    digest.update(f"{call.method} {call.path} {sorted(call.params.items())}".encode())
    digest.update(orjson.dumps(pairs, option=orjson.OPT_SORT_KEYS))
    digest.update(call.body_bytes())
    for name, value in sorted((call.form or {}).items()):
        digest.update(name.encode() + b"\0" + value)
    for file in call.form_files:
        digest.update(file)
    return digest.digest()


def _unavailable() -> Reply:
    reply = error_reply(503, "idempotency_unavailable",
                        "Idempotency-Key needs the database, which does not answer")  # fmt: skip
    reply.headers = {**reply.headers, "retry-after": "1"}
    return reply
