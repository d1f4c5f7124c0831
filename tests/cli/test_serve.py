"""`ferroscore serve` as a user runs it: its own embedded PostgreSQL, every demo row scored
over HTTP and compared with xgboost, the decisions in the database, a clean stop, a quick
second start that reuses everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from ferroscore.models.registry import DEMO_MODEL

from support import ServerProcess

pytestmark = pytest.mark.e2e

Spawn = Callable[..., ServerProcess]
SCORE = f"/v1/models/{DEMO_MODEL}/score"


def _embedded_url(data_dir: Path) -> str:
    return f"postgresql://postgres@/postgres?host={data_dir / 'pgdata'}"


def _postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


def _embedded_env(data_dir: Path) -> dict[str, str]:
    # No DATABASE_URL: the server must start its own PostgreSQL.
    return {"FERROSCORE_DATA_DIR": str(data_dir), "DATABASE_URL": ""}


def test_serves_exact_scores_on_embedded_postgres(
    spawn_server: Spawn, tmp_path: Path, demo_model_bytes: bytes
) -> None:
    data_dir = tmp_path / "data"
    server = spawn_server(_embedded_env(data_dir))
    server.wait_ready()
    # The development key: made at the first start, kept for the owner only, and the curl
    # line printed with it works as printed.
    key_file = data_dir / "dev-key"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    # Off a terminal the log is JSON lines, the curl line one of them.
    [line] = [json.loads(ln)["curl"] for ln in server.log().splitlines() if '"curl"' in ln]
    assert key_file.read_text().strip() in line
    printed = subprocess.run(["bash", "-c", line], capture_output=True, text=True,
                             timeout=30)  # fmt: skip
    curled = json.loads(printed.stdout)
    assert curled["model"] == DEMO_MODEL, printed
    assert server.request("GET", "/v1/models", headers={"authorization": ""})[0] == 401

    data = load_breast_cancer()
    status, model = server.request("GET", f"/v1/models/{DEMO_MODEL}")
    assert status == 200
    props = model["input_schema"]["properties"]
    names = sorted(props, key=lambda n: props[n]["x-ferroscore-column"])
    expected = xgb.Booster(model_file=bytearray(demo_model_bytes)).inplace_predict(data.data)
    ids = [curled["request_id"]]
    for row, want in zip(data.data, expected, strict=True):
        body = json.dumps({"features": dict(zip(names, map(float, row), strict=True))})
        status, answer = server.request("POST", SCORE, body.encode())
        assert status == 200, answer
        assert abs(answer["score"] - float(want)) <= 1e-6
        ids.append(answer["request_id"])

    assert server.request("POST", SCORE, b"{oops")[0] == 400
    status, bad = server.request("POST", SCORE, b'{"features": {"mean_radius": -1}}')
    assert status == 422
    assert {"pointer": "/features/mean_radius", "code": "minimum"}.items() <= bad["errors"][
        0
    ].items()

    # A clean stop writes every queued decision, then stops the embedded PostgreSQL.
    assert server.stop(signal.SIGTERM) == 0, server.log()
    assert not _postmaster_running(data_dir)

    key = key_file.read_text()
    again = spawn_server(_embedded_env(data_dir))
    started = time.monotonic()
    again.wait_ready()
    assert time.monotonic() - started < 30
    assert key_file.read_text() == key, "the development key is kept across restarts"
    with psycopg.connect(_embedded_url(data_dir)) as conn:
        logged = {r[0] for r in conn.execute("SELECT request_id FROM decisions")}
        versions = conn.execute("SELECT count(*) FROM models").fetchone()
    assert logged == set(ids)
    assert versions == (1,), "the demo model is registered once"
    assert again.stop(signal.SIGINT) == 0, again.log()
    assert not _postmaster_running(data_dir)


def test_refuses_a_port_someone_listens_on(spawn_server: Spawn, database_url: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        # SO_REUSEPORT, as Robyn binds: without our check a second server would share it.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        blocked = spawn_server({"DATABASE_URL": database_url}, port)
        assert blocked.proc.wait(timeout=30) == 2
        assert "already in use" in blocked.log()


def test_several_processes_serve_and_stop_together(spawn_server: Spawn, database_url: str) -> None:
    server = spawn_server({"DATABASE_URL": database_url, "FERROSCORE_PROCESSES": "2"})
    server.wait_ready()
    body = (
        Path(__file__).resolve().parents[2] / "python" / "ferroscore" / "demo" / "example.json"
    ).read_bytes()
    for _ in range(20):
        status, answer = server.request("POST", SCORE, body)
        assert status == 200, answer
    assert server.stop(signal.SIGTERM) == 0, server.log()
