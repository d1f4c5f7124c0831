"""Nothing acknowledged is lost: with 4 clients scoring all along, the serving process is
SIGKILLed, PostgreSQL's postmaster is SIGKILLed and started again, and the spool's file
system fills up; afterwards every decision answered 200 is in PostgreSQL exactly once. A
control run, with the spool lost between a crash and the restart, shows that the check sees
a loss when there is one.

PostgreSQL here is an embedded server of this module's own, so that killing it harms no other
test."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from ferroscore.processes.embedded import start_embedded_postgres

from support import Load, ServerProcess, children, fresh_database

CLIENTS = 4


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(URL, data directory) of a PostgreSQL server this module may kill."""
    data_dir = Path(tmp_path_factory.mktemp("faults-postgres"))
    return start_embedded_postgres(data_dir), data_dir


@pytest.fixture
def database(own_postgres: tuple[str, Path]) -> Iterator[str]:
    with fresh_database(own_postgres[0]) as url:
        yield url


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])


def _kill_postgres(data_dir: Path) -> None:
    pid = _postmaster(data_dir)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _restart_postgres(data_dir: Path) -> None:
    # pgserver keeps the server it started in a table of its own, as if it still ran.
    from pgserver.postgres_server import PostgresServer

    PostgresServer._instances.pop((data_dir / "pgdata").resolve(), None)
    start_embedded_postgres(data_dir)


@contextmanager
def _server(
    env: dict[str, str], log: Path, launcher: tuple[str, ...] = ()
) -> Iterator[ServerProcess]:
    class Launched(ServerProcess):
        pass

    Launched.launcher = launcher
    server = Launched({"FERROSCORE_AUTH": "false", "FERROSCORE_DECISION_FLUSH_MS": "50",
                       "FERROSCORE_HEALTH_TIMEOUT_S": "5", **env}, log)  # fmt: skip
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _audit(database: str, load: Load, timeout: float = 60) -> tuple[int, int, int]:
    """(acknowledged, missing, duplicated): every request answered 200 against the decision
    log, once the log has had `timeout` seconds to take what is in the spool; a row written
    twice is a duplicate."""
    acknowledged = {o.request_id for o in load.outcomes if o.result == 200}
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(database) as conn:
            # One row per record of a request, model and version: more is a duplicate.
            logged = conn.execute(
                "SELECT request_id, count(*) FROM decisions"
                " GROUP BY request_id, row_index, model, version"
            ).fetchall()
        missing = acknowledged - {r for r, _ in logged}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    duplicated = sum(n - 1 for _, n in logged)
    print(f"acknowledged {len(acknowledged)}, missing {len(missing)}, duplicated {duplicated};"
          f" outcomes {dict(load.results())}")  # fmt: skip
    return len(acknowledged), len(missing), duplicated


def _kill_serving(server: ServerProcess) -> int:
    [child] = children(server.proc.pid)
    os.kill(child, signal.SIGKILL)
    return child


def _wait_replaced(server: ServerProcess, dead: int, load: Load) -> None:
    deadline = time.monotonic() + 30
    while dead in children(server.proc.pid) or not children(server.proc.pid):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    load.wait_answers(50)


@pytest.mark.parametrize("mode", ["durable", "buffered"])
def test_sigkill_of_the_serving_process_loses_nothing(
    database: str, tmp_path: Path, mode: str
) -> None:
    env = {"DATABASE_URL": database, "FERROSCORE_SPOOL_DIR": str(tmp_path / "spool"),
           "FERROSCORE_DECISION_LOG": mode}  # fmt: skip
    with _server(env, tmp_path / "server.log") as server, Load(server.url, CLIENTS) as load:
        for _ in range(3):
            load.wait_answers(300)
            dead = _kill_serving(server)
            _wait_replaced(server, dead, load)
        load.stop()
        acknowledged, missing, duplicated = _audit(database, load)
    assert acknowledged > 900
    assert (missing, duplicated) == (0, 0)


def test_the_check_sees_a_loss(database: str, tmp_path: Path) -> None:
    """The control: the same crash, and the spool removed before the successor starts (what
    a machine's crash does to records the disk never had), must show missing decisions."""
    spool = tmp_path / "spool"
    env = {"DATABASE_URL": database, "FERROSCORE_SPOOL_DIR": str(spool),
           # Nothing reaches PostgreSQL before the crash: only the spool holds the decisions.
           "FERROSCORE_DECISION_FLUSH_MS": "60000"}  # fmt: skip
    with _server(env, tmp_path / "server.log") as server, Load(server.url, CLIENTS) as load:
        load.wait_answers(300)
        # Stopped (not killed) first, so that the supervisor starts no successor meanwhile.
        [child] = children(server.proc.pid)
        os.kill(child, signal.SIGSTOP)
        for path in spool.rglob("*.seg"):
            path.unlink()
        os.kill(child, signal.SIGKILL)
        _wait_replaced(server, child, load)
        load.stop()
        _, missing, duplicated = _audit(database, load, timeout=5)
    assert missing > 0
    assert duplicated == 0


def test_postgres_killed_and_restarted_loses_nothing(
    database: str, own_postgres: tuple[str, Path], tmp_path: Path
) -> None:
    _, data_dir = own_postgres
    env = {"DATABASE_URL": database, "FERROSCORE_SPOOL_DIR": str(tmp_path / "spool")}
    with _server(env, tmp_path / "server.log") as server, Load(server.url, CLIENTS) as load:
        load.wait_answers(300)
        _kill_postgres(data_dir)
        # The service answers all along: the spool holds what PostgreSQL cannot take.
        load.wait_answers(300)
        time.sleep(3)
        _restart_postgres(data_dir)
        load.wait_answers(300)
        load.stop()
        acknowledged, missing, duplicated = _audit(database, load)
    assert acknowledged > 900
    assert (missing, duplicated) == (0, 0)
    assert "database unavailable" in server.log()


def test_a_full_spool_disk_refuses_then_recovers(
    database: str, own_postgres: tuple[str, Path], tmp_path: Path
) -> None:
    """The spool on a 1 MiB tmpfs of the server's own mount namespace; PostgreSQL away, so
    the spool fills: scoring answers 503 and acknowledges nothing it cannot record, then
    serves again once PostgreSQL is back and the spool drains."""
    _, data_dir = own_postgres
    spool = tmp_path / "spool"
    spool.mkdir()
    mount = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"'
    # Root keeps its own user (and its access to PostgreSQL's socket); anyone else becomes
    # root of a user namespace of its own, which may mount there.
    as_user = () if os.geteuid() == 0 else ("--user", "--map-root-user")
    launcher = ("unshare", *as_user, "--mount", "sh", "-c", mount, str(spool))
    env = {"DATABASE_URL": database, "FERROSCORE_SPOOL_DIR": str(spool)}
    with _server(env, tmp_path / "server.log", launcher) as server, \
            Load(server.url, CLIENTS) as load:  # fmt: skip
        load.wait_answers(100)
        _kill_postgres(data_dir)
        deadline = time.monotonic() + 60
        while load.results()[503] < 50:
            assert time.monotonic() < deadline, f"the spool never filled: {load.results()}"
            time.sleep(0.1)
        full_at = time.monotonic()
        _restart_postgres(data_dir)
        deadline = time.monotonic() + 60
        while load.results(since=full_at + 1)[200] < 200:
            assert time.monotonic() < deadline, f"never served again: {load.results()}"
            time.sleep(0.1)
        load.stop()
        _, missing, duplicated = _audit(database, load)
    assert (missing, duplicated) == (0, 0)


def test_sustained_batches_keep_memory_bounded(database: str, tmp_path: Path) -> None:
    """Batches of 100 rows for 8 s from 4 clients: PostgreSQL takes rows slower than the API
    acknowledges them, so the backlog builds in the spool (2 MiB here) and the spool pushes
    back with 503s; the serving process's memory stays flat, and every acknowledged row is
    written."""
    import psutil

    env = {"DATABASE_URL": database, "FERROSCORE_SPOOL_DIR": str(tmp_path / "spool"),
           "FERROSCORE_SPOOL_MAX_MB": "2", "FERROSCORE_DECISION_FLUSH_MS": "200"}  # fmt: skip
    with _server(env, tmp_path / "server.log") as server:
        [child] = children(server.proc.pid)
        serving = psutil.Process(child)
        with Load(server.url, CLIENTS, rows=100) as load:
            load.wait_answers(20)
            start_rss = serving.memory_info().rss
            peak_rss = start_rss
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                peak_rss = max(peak_rss, serving.memory_info().rss)
                time.sleep(0.1)
            load.stop()
            acknowledged, missing, duplicated = _audit(database, load)
    grown = (peak_rss - start_rss) / 2**20
    print(f"RSS {start_rss / 2**20:.0f} MiB at the start, grew {grown:.1f} MiB; "
          f"{acknowledged} batches acknowledged, {load.results()[503]} refused")  # fmt: skip
    assert grown < 64
    assert (missing, duplicated) == (0, 0)
