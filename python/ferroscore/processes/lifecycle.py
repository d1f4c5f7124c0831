"""Graceful stop on SIGINT/SIGTERM. Robyn 0.88's Rust core takes over both signals and then
neither exits nor runs shutdown handlers, so ferroscore blocks them in every thread and waits
for them in a thread of its own."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger(__name__)

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def block_stop_signals() -> None:
    """Call first, before any thread starts: threads inherit the mask, so no one else sees them."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def on_stop_signal(handler: Callable[[], None]) -> threading.Thread:
    """Runs `handler` in a thread of its own when the first stop signal arrives."""

    def wait() -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        log.info("received %s; stopping", signal.Signals(signum).name)
        handler()

    thread = threading.Thread(target=wait, name="stop-signal", daemon=True)
    thread.start()
    return thread


def stop_and_exit(stop: Callable[[], None]) -> NoReturn:
    """Runs `stop`, then ends the serving process with `os._exit`, as Robyn's threads would
    never let `sys.exit` finish. The `atexit` handlers a serving process inherited are its
    supervisor's (the embedded PostgreSQL's stop among them), so they do not run here."""
    code = 0
    try:
        stop()
    except Exception:
        log.exception("error while stopping")
        code = 1
    logging.shutdown()
    os._exit(code)
