"""What the supervisor and its serving processes share: whether the service is draining, how
many times a serving process was restarted, and each process's last heartbeat.

One page of anonymous shared memory, mapped before the first fork, so that every serving
process (restarted ones included) sees the same page. Each field is an aligned 8-byte double,
which x86-64 and aarch64 write and read whole: no lock is needed for one writer per field."""

from __future__ import annotations

import mmap
import time

#: The most serving processes one supervisor runs (the bound of FERROSCORE_PROCESSES).
MAX_SLOTS = 64
_DRAINING, _RESTARTS, _SLOTS = 0, 1, 2


class Board:
    """Shared state of one supervised service. Heartbeats are `time.monotonic()` values,
    comparable across processes (CLOCK_MONOTONIC is system-wide)."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, 8 * (_SLOTS + MAX_SLOTS))
        self._cells = memoryview(self._map).cast("d")

    @property
    def draining(self) -> bool:
        """Set by the supervisor when it is told to stop; readiness answers 503 from then on."""
        return self._cells[_DRAINING] != 0.0

    def drain(self) -> None:
        self._cells[_DRAINING] = 1.0

    @property
    def restarts(self) -> int:
        """Serving processes started again after one died or was replaced."""
        return int(self._cells[_RESTARTS])

    def count_restart(self) -> None:
        self._cells[_RESTARTS] += 1.0

    def beat(self, slot: int) -> None:
        """The serving process of `slot` is alive and can answer."""
        self._cells[_SLOTS + slot] = time.monotonic()

    def last_beat(self, slot: int) -> float:
        """When the process of `slot` last beat; 0.0 before its first beat."""
        return self._cells[_SLOTS + slot]

    def clear(self, slot: int) -> None:
        """Forgets the beats of a process that is gone, before its successor starts."""
        self._cells[_SLOTS + slot] = 0.0
