"""The HTTP stacks compared: ferroscore and the baselines in bench/baselines, each started the
way its users start it, on 127.0.0.1, pinned to one core. Servers are ours: they are stopped
by PID (their process group), never by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
BASELINES = BENCH / "baselines"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(BASELINES))

import hooked  # noqa: E402
from common import DEMO, SCORE_PATH  # noqa: E402

EXAMPLE = DEMO.joinpath("example.json").read_text().encode()
#: Rows in the batch stacks' requests.
BATCH_ROWS = 100


def batch_body(rows: int = BATCH_ROWS) -> bytes:
    """A batch of `rows` copies of the demo example."""
    import json

    record = json.loads(EXAMPLE)
    return json.dumps({"rows": [record] * rows}).encode()


@dataclass(frozen=True)
class Stack:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    path: str = SCORE_PATH
    body: bytes = EXAMPLE
    #: Sent with every request (an API key).
    headers: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def ferroscore_stack(
    name: str, python: Path, port: int, database_url: str, cwd: Path, **extra: Any
) -> Stack:
    """`ferroscore serve` as its users run it, quiet, on `database_url`; `extra`: more of the
    Stack (a path, a body) and, under `env`, more of its environment."""
    env = {"FERROSCORE_PORT": str(port), "FERROSCORE_LOG_LEVEL": "WARNING",
           "DATABASE_URL": database_url, **extra.pop("env", {})}  # fmt: skip
    return Stack(name, [str(python), "-m", "ferroscore", "serve"], cwd, env, **extra)


def bench_key(database_url: str) -> dict[str, str]:
    """The header of a new API key (every scope, no rate limit) on a migrated database; none
    where the schema has no keys (a checkout from before them)."""
    import psycopg

    from ferroscore.access import keys

    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            token, _ = keys.create(conn, "default", keys.SCOPES, description="make bench")
    except psycopg.errors.UndefinedTable:
        return {}
    return {"Authorization": f"Bearer {token}"}


def stacks(port_of: dict[str, int], database_url: str) -> list[Stack]:
    from ferroscore.migrations import migrate

    py = sys.executable
    migrate(database_url)
    key = bench_key(database_url)
    front_dir = tempfile.mkdtemp(prefix="ferroscore-bench-front-")
    front_env = {"FERROSCORE_FRONT_PORT": str(port_of["ferroscore-front"]),
                 "FERROSCORE_PORT": str(free_port()), "FERROSCORE_LOG_LEVEL": "WARNING",
                 "DATABASE_URL": database_url, "FERROSCORE_DATA_DIR": front_dir}  # fmt: skip
    return [
        ferroscore_stack(
            "ferroscore", Path(py), port_of["ferroscore"], database_url, BENCH.parent, headers=key
        ),
        # The same with the access log on (a line per request, at INFO), without metrics,
        # then without authentication: what each costs a request.
        ferroscore_stack(
            "ferroscore-accesslog",
            Path(py),
            port_of["ferroscore-accesslog"],
            database_url,
            BENCH.parent,
            headers=key,
            env={"FERROSCORE_LOG_LEVEL": "INFO", "FERROSCORE_LOG_FORMAT": "json"},
        ),
        # The decision log's modes: ferroscore runs `durable` (the default: requests wait for
        # the group commit on the event loop, one worker thread); here the other two.
        *(
            ferroscore_stack(
                f"ferroscore-{mode}",
                Path(py),
                port_of[f"ferroscore-{mode}"],
                database_url,
                BENCH.parent,
                headers=key,
                env={"FERROSCORE_DECISION_LOG": mode},
            )
            for mode in ("buffered", "off")
        ),
        *(
            ferroscore_stack(
                f"ferroscore-batch{BATCH_ROWS}{suffix}",
                Path(py),
                port_of[f"ferroscore-batch{BATCH_ROWS}{suffix}"],
                database_url,
                BENCH.parent,
                headers=key,
                body=batch_body(),
                env={"FERROSCORE_DECISION_LOG": mode},
            )
            for suffix, mode in (("", "durable"), ("-off", "off"))
        ),
        ferroscore_stack(
            "ferroscore-nometrics",
            Path(py),
            port_of["ferroscore-nometrics"],
            database_url,
            BENCH.parent,
            headers=key,
            env={"FERROSCORE_METRICS": "false"},
        ),
        ferroscore_stack(
            "ferroscore-nokeys",
            Path(py),
            port_of["ferroscore-nokeys"],
            database_url,
            BENCH.parent,
            env={"FERROSCORE_AUTH": "false"},
        ),
        # nginx (deploy/nginx, as `make serve-prod` runs it) in front of the same service,
        # both on the server's core: what the production front costs.
        Stack(
            "ferroscore-front",
            [py, str(BENCH.parent / "scripts" / "serve_prod.py")],
            BENCH.parent,
            front_env,
            headers=key,
        ),
        *(
            ferroscore_stack(
                name,
                Path(py),
                port_of[name],
                database_url,
                BENCH.parent,
                env={"FERROSCORE_HOOKS": module, "PYTHONPATH": str(BENCH)},
                path=f"/v1/models/{hooked.HOOKED_MODEL}/score",
                body=hooked.body(),
                headers=key,
            )
            for name, module in (
                ("ferroscore-hooks", "hooked"),
                ("ferroscore-hooks-sync", "hooked_sync"),
            )
        ),
        Stack(
            "robyn-constant",
            [py, "robyn_constant.py"],
            BASELINES,
            {"BENCH_PORT": str(port_of["robyn-constant"])},
        ),
        Stack(
            "robyn-constant-kept",
            [py, "robyn_constant.py"],
            BASELINES,
            {"BENCH_PORT": str(port_of["robyn-constant-kept"]), "BENCH_KEEP_THREAD_STATE": "1"},
        ),
        Stack(
            "robyn-orjson-onnxruntime",
            [py, "robyn_onnx.py"],
            BASELINES,
            {"BENCH_PORT": str(port_of["robyn-orjson-onnxruntime"])},
        ),
        Stack(
            "litestar-granian-onnxruntime",
            [
                str(VENV_BIN / "granian"),
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port_of["litestar-granian-onnxruntime"]),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "litestar_onnx:app",
            ],
            BASELINES,
            {},
        ),
        Stack(
            "fastapi-uvicorn-xgboost",
            [
                str(VENV_BIN / "uvicorn"),
                "fastapi_xgboost:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port_of["fastapi-uvicorn-xgboost"]),
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            BASELINES,
            {},
        ),
    ]


class Server:
    """One stack, running in its own session on `core`, until `stop`."""

    def __init__(self, stack: Stack, port: int, core: int, log_dir: Path) -> None:
        self.stack, self.port = stack, port
        self.url = f"http://127.0.0.1:{port}{stack.path}"
        self.log = log_dir / f"{stack.name}.log"
        env = {**os.environ, **stack.env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))  # refuses a port someone else listens on
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(core), *stack.argv],
                cwd=stack.cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 90, keyless: bool = False) -> None:
        """Waits until the stack scores its request; `keyless`: or refuses it for want of
        a key (the database is migrated, the key can be made)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.stack.name} exited:\n{self.log.read_text()[-2000:]}")
            try:
                req = urllib.request.Request(
                    self.url, self.stack.body, {"content-type": "application/json",
                                                **self.stack.headers}, method="POST",
                )  # fmt: skip
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                if keyless and e.code == 401:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.stack.name} not ready:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            # ferroscore drains and stops its database; the others get a short grace (Robyn
            # 0.88 ignores SIGTERM with one process).
            try:
                self.proc.wait(20 if self.stack.name.startswith("ferroscore") else 3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


MLSERVER_VENV = BENCH / ".venv-mlserver"


def ensure_mlserver() -> Path | None:
    """MLServer in a virtualenv of its own (its pins clash with the service's); None when it
    does not install here. uvloop < 0.22: MLServer 1.7 crashes at start with newer ones."""
    mlserver = MLSERVER_VENV / "bin" / "mlserver"
    if not mlserver.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        pip = [str(MLSERVER_VENV / "bin" / "pip"), "install", "--quiet"]
        done = subprocess.run([*pip, "mlserver", "mlserver-xgboost", "uvloop<0.22"], check=False)
        if done.returncode != 0:
            return None
    return mlserver


def mlserver_stack(port: int, workdir: Path) -> Stack | None:
    """Baseline (e): MLServer with its xgboost runtime, answering the Open Inference Protocol
    (the same 30 numbers as a [1, 30] FP32 tensor: its own request shape, not ours)."""
    import json

    from common import feature_names, model_path

    mlserver = ensure_mlserver()
    if mlserver is None:
        return None
    home = workdir / "mlserver"
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "parallel_workers": 0,
            }
        )
    )
    (home / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "breast-cancer",
                "implementation": "mlserver_xgboost.XGBoostModel",
                "parameters": {"uri": str(model_path())},
            }
        )
    )
    features = json.loads(EXAMPLE)["features"]
    row = [features[n] for n in feature_names()]
    body = json.dumps(
        {"inputs": [{"name": "x", "shape": [1, len(row)], "datatype": "FP32", "data": row}]}
    ).encode()
    return Stack(
        "mlserver-xgboost",
        [str(mlserver), "start", str(home)],
        home,
        {},
        "/v2/models/breast-cancer/infer",
        body,
    )


def bench_database(core: int | None = None) -> str:
    """A fresh embedded PostgreSQL for the decision log, started by the runner itself: not a
    child of the pinned server, and pinned to `core` (the client's), so the database does not
    share the server's core (as in any real deployment, where it runs elsewhere). It stops
    when the runner exits."""
    import atexit
    import shutil

    from ferroscore.processes.embedded import start_embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="ferroscore-bench-"))
    # atexit runs last-in first-out: the server stops (registered next) before this removal.
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    url = start_embedded_postgres(data_dir)
    if core is not None:
        import psutil

        pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])
        postmaster = psutil.Process(pid)
        # Backends started later are the postmaster's children: they inherit its core.
        for proc in [postmaster, *postmaster.children(recursive=True)]:
            proc.cpu_affinity([core])
    return url
