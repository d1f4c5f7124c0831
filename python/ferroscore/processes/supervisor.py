"""`ferroscore serve`'s parent process: it forks the serving processes, starts another when one
dies or stops beating, and owns the stop signals — granian's server module is the model.

- Each serving process binds the port itself with SO_REUSEPORT, so the kernel spreads new
  connections over the live ones and a dead one's share goes to the others at once.
- A process that dies is started again at once; one that keeps dying young is started again
  after a growing pause (a crash loop must not spin), and each death is logged with its exit
  status or signal.
- A process whose heartbeat (`Board.beat`, written while it can answer) is older than the
  health timeout, or that does not start serving within the start timeout, is killed and
  replaced.
- SIGTERM or SIGINT: the board turns draining (readiness answers 503 everywhere at once), each
  process gets SIGTERM and drains (`adapters.robyn`), and the parent waits for them for the
  grace period and the decisions' flush; it then returns, and the embedded PostgreSQL stops
  last, through its `atexit` handler. A process still starting is stopped at once; a second
  signal stops them all at once.

The parent runs no thread: it waits for signals with `sigtimedwait`, so that every fork is
taken from a process with one thread."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from ferroscore.processes.board import Board
from ferroscore.processes.lifecycle import STOP_SIGNALS

log = logging.getLogger(__name__)

WAITED = STOP_SIGNALS | {signal.SIGCHLD}
#: How often the parent looks at heartbeats when no signal wakes it.
TICK_S = 0.05
#: A process that lived this long before dying was not crash-looping.
STABLE_S = 10.0
#: The longest pause before starting a crash-looping process again.
MAX_BACKOFF_S = 30.0
#: On top of the grace period: how long a draining process may take to write its decisions.
FLUSH_S = 15.0


def backoff(streak: int) -> float:
    """The pause before starting again a process that died young `streak` times in a row:
    none the first time, then 0.5 s doubling up to `MAX_BACKOFF_S`."""
    if streak <= 1:
        return 0.0
    return min(MAX_BACKOFF_S, 0.5 * 2.0 ** (streak - 2))


def describe(status: int) -> str:
    """A wait status in words: 'exited with status 1', 'was killed by SIGKILL'."""
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


@dataclass
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    serving: bool = False
    #: Deaths in a row, each before `STABLE_S` of life.
    streak: int = 0
    #: When to start the next process of this slot (after its backoff).
    due: float = 0.0
    #: When the last process of this slot died, until its successor serves.
    died: float | None = None


class Supervisor:
    """Runs `processes` serving processes, each `serve(slot)` in a forked child."""

    def __init__(
        self,
        processes: int,
        serve: Callable[[int], None],
        board: Board,
        *,
        grace_s: float,
        health_timeout_s: float,
        start_timeout_s: float,
        reaped: Callable[[int], None] = lambda pid: None,
    ) -> None:
        """`serve(slot)` runs in the child and should end it with `os._exit`; if it returns,
        the child exits with status 0 (1 if it raised). `reaped(pid)` runs in the parent
        after each serving process ends."""
        self.slots = [_Slot(i) for i in range(processes)]
        self.board = board
        self._serve = serve
        self._reaped = reaped
        self.grace_s = grace_s
        self.health_timeout_s = health_timeout_s
        self.start_timeout_s = start_timeout_s

    def run(self) -> int:
        """Serves until a stop signal, then drains; returns the exit status."""
        signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
        for slot in self.slots:
            self._start(slot)
        while True:
            info = signal.sigtimedwait(WAITED, TICK_S)
            if info is not None and info.si_signo in STOP_SIGNALS:
                return self._stop(signal.Signals(info.si_signo).name)
            self._reap(restart=True)
            now = time.monotonic()
            for slot in self.slots:
                if slot.pid:
                    self._check(slot, now)
                elif now >= slot.due:
                    self._start(slot)

    def _start(self, slot: _Slot) -> None:
        if slot.started:
            self.board.count_restart()
        self.board.clear(slot.index)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._child(slot.index, parent)
        slot.pid, slot.started, slot.serving = pid, time.monotonic(), False
        log.debug("started serving process %d (slot %d)", pid, slot.index)

    def _child(self, index: int, parent: int) -> None:
        code = 1
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            _die_with(parent)
            self._serve(index)
            code = 0
        except BaseException:
            log.exception("serving process %d failed", os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)

    def _reap(self, *, restart: bool) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._reaped(pid)
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            now = time.monotonic()
            lived = now - slot.started
            slot.pid = 0
            if not restart:
                level = logging.INFO if status == 0 else logging.WARNING
                log.log(level, "serving process %d %s", pid, describe(status))
                continue
            slot.streak = slot.streak + 1 if lived < STABLE_S else 1
            pause = backoff(slot.streak)
            slot.due, slot.died = now + pause, slot.died or now
            then = f"in {pause:.1f} s ({slot.streak} early deaths in a row)" if pause else "now"
            log.warning("serving process %d (slot %d) %s after %.1f s; starting another %s",
                        pid, slot.index, describe(status), lived, then)  # fmt: skip

    def _check(self, slot: _Slot, now: float) -> None:
        beat = self.board.last_beat(slot.index)
        if beat == 0.0:
            if now - slot.started > self.start_timeout_s:
                self._replace(slot, f"did not start serving within {self.start_timeout_s:g} s")
            return
        if not slot.serving:
            slot.serving = True
            since = f", {now - slot.died:.2f} s after its predecessor died" if slot.died else ""
            log.info("serving process %d (slot %d) is serving%s", slot.pid, slot.index, since)
            slot.died = None
        if now - beat > self.health_timeout_s:
            self._replace(slot, f"has not answered its health check for {now - beat:.1f} s")

    def _replace(self, slot: _Slot, why: str) -> None:
        log.warning("serving process %d (slot %d) %s; replacing it", slot.pid, slot.index, why)
        _kill(slot.pid, signal.SIGKILL)
        self.board.clear(slot.index)

    def _stop(self, name: str) -> int:
        self.board.drain()
        live = [s for s in self.slots if s.pid]
        log.info("received %s; draining %d serving processes (grace %g s)",
                 name, len(live), self.grace_s)  # fmt: skip
        for slot in live:
            # One still starting has nothing in flight, and cannot drain yet.
            _kill(slot.pid, signal.SIGTERM if slot.serving else signal.SIGKILL)
        deadline = time.monotonic() + self.grace_s + FLUSH_S
        while any(s.pid for s in self.slots):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            info = signal.sigtimedwait(WAITED, min(left, TICK_S))
            if info is not None and info.si_signo in STOP_SIGNALS:
                log.warning("second %s; stopping the serving processes now",
                            signal.Signals(info.si_signo).name)  # fmt: skip
                break
            self._reap(restart=False)
        forced = [s for s in self.slots if s.pid]
        for slot in forced:
            log.warning("serving process %d did not stop; killing it", slot.pid)
            _kill(slot.pid, signal.SIGKILL)
        while any(s.pid for s in self.slots):
            self._reap(restart=False)
            time.sleep(0.01)
        return 1 if forced else 0


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone; reaped next
        os.kill(pid, sig)


def _die_with(parent: int) -> None:
    """A serving process is sent SIGTERM (and drains) if its supervisor dies unannounced."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)  # the parent died before prctl
