"""ferroscore behind PgBouncer in transaction mode (Debian's pgbouncer), as replicas share one
PostgreSQL: the pool goes through PgBouncer with two server connections for two serving
processes, LISTEN and the migrations go straight to PostgreSQL (FERROSCORE_DIRECT_URL).
Scores, decisions, key checks and revocation by NOTIFY all work."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ferroscore.access import keys
from ferroscore.models.registry import DEMO_MODEL

from support import create_key, free_port, serving

pytestmark = pytest.mark.e2e

SCORE = f"/v1/models/{DEMO_MODEL}/score"
EXAMPLE = Path(__file__).parents[2] / "python" / "ferroscore" / "demo" / "example.json"


def _pgbouncer() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    assert found, "pgbouncer is not installed: make system-packages (apt-get install pgbouncer)"
    return found


@pytest.fixture(scope="module")
def bouncer(module_database: str) -> Iterator[str]:
    """PgBouncer in transaction mode before the module's database, two server connections
    for every client; its URL for that database."""
    server = conninfo_to_dict(module_database)
    port = free_port()
    # Files PgBouncer can read once it has dropped root for the user the embedded
    # PostgreSQL runs as (pgserver), or for nobody.
    conf = Path(tempfile.mkdtemp(prefix="ferroscore-pgbouncer-"))
    conf.chmod(0o755)
    (conf / "users.txt").write_text(f'"{server.get("user", "postgres")}" ""\n')
    (conf / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.get('host', '127.0.0.1')} port={server.get('port', 5432)}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {conf / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for f in conf.iterdir():
        f.chmod(0o644)
    argv = [_pgbouncer(), str(conf / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        user = "pgserver" if _user_exists("pgserver") else "nobody"
        argv[1:1] = ["-u", user]
    log = (conf / "pgbouncer.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = make_conninfo(**{**server, "host": "127.0.0.1", "port": str(port)})
    try:
        _wait_connects(url, proc, conf / "pgbouncer.log")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(conf, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_connects(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with psycopg.connect(url, prepare_threshold=None) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise AssertionError(f"PgBouncer does not answer:\n{log.read_text()}")


def test_serving_through_pgbouncer_in_transaction_mode(
    bouncer: str, module_database: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": bouncer, "FERROSCORE_DIRECT_URL": module_database,
           "FERROSCORE_PROCESSES": "2", "FERROSCORE_DB_POOL_SIZE": "4",
           # Only a NOTIFY, heard on the direct connection, can bring changes in time.
           "FERROSCORE_CATALOG_RECONCILE_S": "3600"}  # fmt: skip
    body = EXAMPLE.read_bytes()
    with serving(env, tmp_path / "server.log") as server:
        token = create_key(module_database, scopes=("score",))
        auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        ids = []
        # Enough requests for psycopg to prepare what it runs often, were it allowed to.
        for _ in range(200):
            status, answer = server.request("POST", SCORE, body, auth)
            assert status == 200, answer
            ids.append(answer["request_id"])
        # Revoked: every process hears the NOTIFY on its direct LISTEN connection.
        key_id = token.split("_")[1]
        with psycopg.connect(module_database, autocommit=True) as conn:
            assert keys.revoke(conn, key_id)
        deadline = time.monotonic() + 3
        while any(server.request("POST", SCORE, body, auth)[0] != 401 for _ in range(10)):
            assert time.monotonic() < deadline, "the revocation did not reach every process"
            time.sleep(0.05)
    # Every decision went through PgBouncer into the database.
    with psycopg.connect(module_database) as conn:
        written = conn.execute(
            "SELECT count(DISTINCT request_id) FROM decisions WHERE request_id = ANY(%s)", (ids,)
        ).fetchone()
    assert written == (len(ids),)
    log = (tmp_path / "server.log").read_text()
    assert "prepared statement" not in log, log
