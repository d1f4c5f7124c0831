"""API keys: created by `ferroscore keys create`, stored as a SHA-256 digest only, looked up
once per process and then served from memory.

A token is `fsk_<id>_<secret>`: the prefix lets secret scanners find a leaked one, `<id>` (12
hex digits) names the key in listings and in the audit trail, and `<secret>` is 40 random
base62 characters (238 bits). Against a guess that large a fast digest is enough: a slow
password hash (argon2) guards low-entropy secrets and would cost every cache miss
milliseconds for nothing.

Each process keeps the keys it has seen in a dict keyed by the token (a hit is one dict
lookup). A revocation NOTIFYs `CHANNEL`; every process drops its cache when it hears it, and
every `reconcile_s` anyway (a missed notification), so a revoked key stops working within
that time everywhere."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import string
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from ferroscore.pipeline import Caller
from ferroscore.processes.listen import Listener

PREFIX = "fsk_"
SCOPES = ("score", "read", "admin", "metrics")
CHANNEL = "ferroscore_keys"
#: What a tenant's name may be, for keys and JWT claims alike: it is stored with every
#: decision and labels metrics.
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 40
_TOKEN = re.compile(r"^fsk_([0-9a-f]{12})_[0-9A-Za-z]{40}$")
#: Unknown tokens remembered, so that a client retrying a bad one does not reach the
#: database each time; and for how long.
_MISSES = 4096
_MISS_S = 1.0
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|m|min|h|hour)\s*$")
_PER = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class KeysUnavailableError(Exception):
    """A token not in memory could not be checked: the database does not answer."""


@dataclass(frozen=True)
class Key:
    """A stored key, as `keys list` shows it (never its token)."""

    id: str
    tenant: str
    scopes: tuple[str, ...]
    rate_per_s: float | None
    burst: int | None
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def caller(self) -> Caller:
        """The identity a request made with this key runs as."""
        granted = set(self.scopes)
        if "admin" in granted:
            # Whoever may change a model may read it.
            granted.add("read")
        return Caller(self.id, self.tenant, frozenset(granted), self.rate_per_s,
                      self.burst or default_burst(self.rate_per_s))  # fmt: skip


def default_burst(rate_per_s: float | None) -> int:
    """A tenth of a second of requests at once, at least one."""
    return max(1, math.ceil((rate_per_s or 0) / 10))


def parse_rate(text: str) -> float:
    """`500/s`, `30000/min`, `100/h` → requests per second."""
    found = _RATE.match(text)
    if not found or float(found[1]) <= 0:
        raise ValueError(f"rate {text!r}: use a positive number per s, min or h, as 500/s")
    return float(found[1]) / _PER[found[2]]


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w`, `45s` → a duration."""
    found = _DURATION.match(text)
    if not found or int(found[1]) <= 0:
        raise ValueError(f"duration {text!r}: use a positive integer and s, m, h, d or w, as 90d")
    return timedelta(seconds=int(found[1]) * _SECONDS[found[2]])


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


_COLUMNS = "id, tenant, scopes, rate_per_s, burst, description, created_at, expires_at, revoked_at"


def _key(row: Mapping[str, Any]) -> Key:
    return Key(**{**row, "scopes": tuple(row["scopes"])})


def create(
    conn: psycopg.Connection[Any],
    tenant: str,
    scopes: Iterable[str],
    *,
    rate_per_s: float | None = None,
    burst: int | None = None,
    expires_in: timedelta | None = None,
    description: str = "",
) -> tuple[str, Key]:
    """Stores a new key; returns its token (shown once, never stored) and the key."""
    wanted = tuple(dict.fromkeys(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ValueError(f"scopes {list(wanted)}: use one or more of {', '.join(SCOPES)}")
    if not TENANT.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r}: 1 to 63 letters, digits, '.', '_' or '-'")
    key_id = secrets.token_hex(6)
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))
    token = f"{PREFIX}{key_id}_{secret}"
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO api_keys (id, tenant, token_sha256, scopes, rate_per_s, burst,"
            " description, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now() + %s)"
            f" RETURNING {_COLUMNS}",
            (key_id, tenant, digest(token), list(wanted), rate_per_s, burst, description,
             expires_in),
        ).fetchone()  # fmt: skip
    assert row is not None
    return token, _key(row)


def listed(conn: psycopg.Connection[Any], tenant: str | None = None) -> list[Key]:
    """Every key (of `tenant`), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE %(t)s::text IS NULL OR tenant = %(t)s"
            " ORDER BY created_at, id",
            {"t": tenant},
        ).fetchall()
    return [_key(r) for r in rows]


def revoke(conn: psycopg.Connection[Any], key_id: str) -> bool:
    """Revokes a key now; every serving process stops accepting it within seconds. False
    when there is no such key, or it was revoked already."""
    found = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL RETURNING 1",
        (key_id,),
    ).fetchone()
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, key_id))
    return found is not None


def find(conn: psycopg.Connection[Any], token: str) -> Key | None:
    """The live key of `token`: known, not revoked, not expired."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE token_sha256 = %s AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now())",
            (digest(token),),
        ).fetchone()
    return _key(row) if row is not None else None


class KeyRing:
    """The keys one serving process has seen, by token, kept fresh from the database."""

    def __init__(self, pool: ConnectionPool, conninfo: str, reconcile_s: float) -> None:
        self._pool = pool
        #: token → (caller, expiry as a time.time(); inf when it never expires).
        self.known: dict[str, tuple[Caller, float]] = {}
        self._misses: dict[str, float] = {}
        self._listener = Listener(conninfo, CHANNEL, self.forget, reconcile_s)

    def start(self) -> None:
        self._listener.start()

    def stop(self) -> None:
        self._listener.stop()

    def forget(self) -> None:
        """Drops what this process knows: the next request of each key reads it again."""
        self.known = {}
        self._misses = {}

    def look_up(self, token: str) -> Caller | None:
        """The caller of a token not in `known` (or expired there), from the database.
        Raises KeysUnavailableError when the database does not answer."""
        now = time.monotonic()
        if self._misses.get(token, 0.0) > now or _TOKEN.match(token) is None:
            return None
        try:
            with self._pool.connection(timeout=1.0) as conn:
                key = find(conn, token)
        except psycopg.Error as e:
            raise KeysUnavailableError(str(e)) from e
        if key is None:
            if len(self._misses) >= _MISSES:
                self._misses = {}
            self._misses[token] = now + _MISS_S
            return None
        expires = key.expires_at.timestamp() if key.expires_at is not None else math.inf
        caller = key.caller()
        self.known[token] = (caller, expires)
        return caller
