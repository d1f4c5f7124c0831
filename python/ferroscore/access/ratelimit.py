"""Per-key rate limits shared by every serving process of one server: GCRA (the token bucket
as one "theoretical arrival time" per key) in a shared anonymous memory map.

The map and its lock are made in the parent before Robyn forks the serving processes, so all
of them read and write the same table: a client whose connections the kernel spreads
unevenly (SO_REUSEPORT hashes connections, not requests) still gets the key's rate, not a
share of it per process. A key takes one 16-byte slot (its tag, its arrival time in
monotonic nanoseconds, the clock every process shares), found by hashing its id; slots are
never freed, and a full table lets requests through rather than refuse them. The critical
section is a few loads and stores; a lock not won within `_LOCK_S` (a process killed while
holding it) lets the request through too."""

from __future__ import annotations

import hashlib
import math
import mmap
import multiprocessing
import struct
import time
from dataclasses import dataclass

SLOTS = 1 << 16
_SLOT = struct.Struct("<QQ")
_LOCK_S = 0.05


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    #: Requests that could be sent at once after this one.
    remaining: int
    #: Seconds until the quota is whole again (allowed), or until the next request is
    #: (refused).
    wait_s: float


class RateLimits:
    """GCRA over a table shared with forked processes."""

    def __init__(self, slots: int = SLOTS) -> None:
        self._slots = slots
        # fileno -1: anonymous, and MAP_SHARED by default, so children see the same pages.
        self._table = mmap.mmap(-1, slots * _SLOT.size)
        self._lock = multiprocessing.Lock()
        self._index: dict[str, int | None] = {}

    def acquire(self, key_id: str, rate_per_s: float, burst: int) -> Verdict:
        """Counts one request of `key_id` against `rate_per_s` with `burst` at once."""
        slot = self._index.get(key_id, -1)
        if slot == -1:
            slot = self._index[key_id] = self._find(key_id)
        if slot is None:
            return Verdict(True, burst, 0.0)
        interval = int(1e9 / rate_per_s)
        tolerance = interval * (burst - 1)
        offset = slot * _SLOT.size
        if not self._lock.acquire(timeout=_LOCK_S):
            return Verdict(True, 0, 0.0)
        try:
            now = time.monotonic_ns()
            tag, tat = _SLOT.unpack_from(self._table, offset)
            start = max(tat, now)
            if start - now > tolerance:
                return Verdict(False, 0, (start - now - tolerance) / 1e9)
            _SLOT.pack_into(self._table, offset, tag, start + interval)
        finally:
            self._lock.release()
        ahead = start + interval - now
        return Verdict(True, max(0, (tolerance + interval - ahead) // interval), ahead / 1e9)

    def _find(self, key_id: str) -> int | None:
        """The slot of `key_id`, claimed if new; None when the table is full."""
        tag = int.from_bytes(hashlib.blake2b(key_id.encode(), digest_size=8).digest()) or 1
        with self._lock:
            for probe in range(self._slots):
                slot = (tag + probe) % self._slots
                found, _ = _SLOT.unpack_from(self._table, slot * _SLOT.size)
                if found == tag:
                    return slot
                if found == 0:
                    _SLOT.pack_into(self._table, slot * _SLOT.size, tag, 0)
                    return slot
        return None


def headers(verdict: Verdict, rate_per_s: float, burst: int) -> dict[str, str]:
    """The IETF RateLimit and RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers),
    with Retry-After on a refusal. The policy's quota is the burst over the time it takes
    to earn it again."""
    window = max(1, math.ceil(burst / rate_per_s))
    reset = max(0, math.ceil(verdict.wait_s))
    out = {
        "ratelimit-policy": f'"key";q={max(burst, round(rate_per_s * window))};w={window}',
        "ratelimit": f'"key";r={verdict.remaining};t={reset}',
    }
    if not verdict.allowed:
        out["retry-after"] = str(max(1, reset))
    return out
