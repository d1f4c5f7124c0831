"""The embedded PostgreSQL: a real server from the `pgserver` wheel, in a local data directory,
used when no DATABASE_URL is given. It listens on a Unix socket only; the process that started
it stops it when that process exits, and a server left running by a crash is reused."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def _running_postmaster(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _stop_postmaster(owner: int, pid: int) -> None:
    # Forked serving processes inherit this handler; only the starter may stop the server.
    if os.getpid() != owner:
        return
    log.info("stopping embedded PostgreSQL (pid %d)", pid)
    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    log.warning("embedded PostgreSQL (pid %d) did not stop within 30 s", pid)


def start_embedded_postgres(data_dir: Path) -> str:
    """Starts (or reuses) the server whose data lives in `data_dir/pgdata`; returns its URL."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset, as on CI machines.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server
    except ImportError as e:  # pragma: no cover - depends on how ferroscore was installed
        raise RuntimeError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "pip install 'ferroscore[embedded]' or point DATABASE_URL at a server"
        ) from e
    pgdata = (data_dir / "pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    # Its start-up narrative is noise next to ours.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    already = _running_postmaster(pgdata)
    log.info("%s embedded PostgreSQL in %s", "reusing" if already else "starting", pgdata)
    # cleanup_mode=None: pgserver's own reference counting misses crashed owners; we stop it.
    server = get_server(pgdata, cleanup_mode=None)
    pid = server.get_pid()
    if already is None and pid is not None:
        atexit.register(_stop_postmaster, os.getpid(), pid)
    url: str = server.get_uri()
    return url
