"""Helpers to run the real server in a subprocess and talk HTTP to it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from playwright.sync_api import Page


def free_port() -> int:
    """A port nobody listens on now; the server itself refuses a busy one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


ALL_SCOPES = ("score", "read", "admin")


def create_key(
    database_url: str, tenant: str = "default", scopes: tuple[str, ...] = ALL_SCOPES,
    **options: Any,
) -> str:  # fmt: skip
    """A new API key's token, made straight in the (migrated) database."""
    import psycopg

    from ferroscore.access import keys

    with psycopg.connect(database_url, autocommit=True) as conn:
        token, _ = keys.create(conn, tenant, scopes, **options)
    return token


#: One key of the default tenant with every scope per test database, made once.
_TEST_KEYS: dict[str, str] = {}


def test_key(database_url: str) -> str:
    """The default tenant's all-scopes key of a test database."""
    if database_url not in _TEST_KEYS:
        _TEST_KEYS[database_url] = create_key(database_url, description="tests")
    return _TEST_KEYS[database_url]


class ServerProcess:
    """`ferroscore serve` in a subprocess of its own session, talked to over HTTP. Unless
    the environment turns authentication off, `request` and `headers` carry a key of the
    default tenant with every scope: the test database's, or the development key the server
    makes on its embedded database."""

    #: What runs the server; `FrontProcess` runs nginx in front of it.
    command = ("-m", "ferroscore", "serve")
    #: What the server's Python is run by (a test may run it in namespaces of its own).
    launcher: tuple[str, ...] = ()

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {**os.environ, **env, **self._ports()}
        full_env.pop("FERROSCORE_HOST", None)
        # Each server's decision spool beside its log, unless the test puts it elsewhere.
        full_env.setdefault("FERROSCORE_SPOOL_DIR", str(log_path.parent / f"spool-{self.port}"))
        self.key: str | None = None
        self._data_dir: Path | None = None
        if full_env.get("FERROSCORE_AUTH", "true").lower() not in ("0", "false", "no", "off"):
            if full_env.get("DATABASE_URL"):
                self.key = test_key(full_env["DATABASE_URL"])
            else:
                self._data_dir = Path(full_env.get("FERROSCORE_DATA_DIR") or ".ferroscore")
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [*self.launcher, sys.executable, *self.command],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _ports(self) -> dict[str, str]:
        return {"FERROSCORE_PORT": str(self.port)}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as r:
                    if r.status == 200:
                        if self._data_dir is not None:
                            self.key = (self._data_dir / "dev-key").read_text().strip()
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log()}")

    @property
    def headers(self) -> dict[str, str]:
        """The credentials of this server's test key (none with authentication off)."""
        return {"authorization": f"Bearer {self.key}"} if self.key else {}

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One request with the test key, unless `headers` carry credentials of their own
        (an empty `authorization` sends none)."""
        sent = {**self.headers, **(headers or {})}
        if not sent.get("authorization"):
            sent.pop("authorization", None)
        req = urllib.request.Request(f"{self.url}{path}", data=body, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, _decoded(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _decoded(e.read())

    def upload(
        self,
        path: str,
        files: dict[str, bytes],
        fields: dict[str, bytes | str],
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POSTs a multipart/form-data body: `files` with a file name, `fields` as text."""
        body, content_type = multipart(files, fields)
        return self.request("POST", path, body, {"content-type": content_type, **(headers or {})})

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signals the server (our own child, by PID) and waits; kills it only as a last resort."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"server ignored signal {sig}:\n{self.log()}") from None
        self._log.close()
        return self.proc.returncode


def children(pid: int) -> list[int]:
    """The processes `pid` started, as Linux lists them."""
    return sorted(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))


class FrontProcess(ServerProcess):
    """`make serve-prod` (scripts/serve_prod.py): nginx on `port`, in front of the supervised
    service on `service_port`."""

    command = (str(Path(__file__).parents[1] / "scripts" / "serve_prod.py"),)

    def _ports(self) -> dict[str, str]:
        self.service_port = free_port()
        return {"FERROSCORE_FRONT_PORT": str(self.port), "FERROSCORE_PORT": str(self.service_port)}


@dataclass(frozen=True)
class FraudModels:
    """Files of the synthetic card-fraud models (see `train_fraud_models`)."""

    dir: Path
    lightgbm: Path
    xgboost: Path
    parquet: Path
    csv: Path
    schema: Path
    features: list[str]

    def frame(self) -> Any:
        import pandas as pd

        return pd.read_parquet(self.parquet)


def fraud_frame(n: int, seed: int = 0) -> Any:
    """Card transactions: amount (5% missing), age, merchant (a pandas category), card_present."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "amount": rng.gamma(2, 50, n),
            "age": rng.integers(18, 90, n),
            "merchant": pd.Categorical(
                rng.choice(["grocery", "travel", "online", "fuel"], n),
                categories=["fuel", "grocery", "online", "travel"],
            ),
            "card_present": rng.random(n) < 0.5,
        }
    )
    df.loc[rng.random(n) < 0.05, "amount"] = np.nan
    risky = (df["amount"].fillna(0) > 120) & df["merchant"].isin(["travel", "online"])
    df["label"] = (risky | (rng.random(n) < 0.05)).astype(int)
    return df


def train_fraud_models(out: Path) -> FraudModels:
    import lightgbm as lgb
    import xgboost as xgb

    from ferroscore import Model
    from ferroscore.models.inference import Options, infer_schema, read_table

    df = fraud_frame(3000)
    x, y = df.drop(columns="label"), df["label"]
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "min_data_per_group": 5},
        lgb.Dataset(x, y),
        num_boost_round=40,
    )
    booster.save_model(out / "lgb.txt")
    xm = xgb.XGBClassifier(
        n_estimators=30, max_depth=4, enable_categorical=True, tree_method="hist"
    ).fit(x, y)
    xm.save_model(out / "xgb.json")
    df.to_parquet(out / "train.parquet")
    df.astype({"merchant": str}).to_csv(out / "train.csv", index=False)
    # Hard bounds (the range widened by a tenth), as a team that wants refusals writes them:
    # the tests of refusals read this schema; `--data` pushes get the training range.
    schema = infer_schema(Model.load(out / "lgb.txt"), read_table(out / "train.parquet"),
                          Options(margin=0.1, hard_bounds=True))  # fmt: skip
    (out / "schema.json").write_text(json.dumps(schema))
    return FraudModels(
        out,
        out / "lgb.txt",
        out / "xgb.json",
        out / "train.parquet",
        out / "train.csv",
        out / "schema.json",
        list(x.columns),
    )


def build(a: Any) -> Any:
    """A served endpoint of a registry `Artifact`, with the default limits."""
    from ferroscore import Endpoint, Model

    model = Model.load(a.artifact, a.format)
    return Endpoint(a.name, a.version, model, a.input_schema, thresholds=a.thresholds)


def empty(database_url: str) -> None:
    """Empties the registry tables of the session database."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE active_models, models, model_audit, version_features")


#: Thresholds for the fraud models' scores, as the API tests register them.
FRAUD_THRESHOLDS = [{"min": 0.5, "decision": "decline"}, {"decision": "approve"}]


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[ServerProcess]:
    """`ferroscore serve` with `env`, ready, stopped cleanly (exit 0) afterwards."""
    server = ServerProcess(env, log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        assert server.stop() == 0, server.log()


def register(
    database_url: str, name: str, artifact: Path, schema: Path, thresholds: Any = None
) -> None:
    """Registers and activates a model version straight in the registry, after the demo model
    (which the service would register itself on an empty registry)."""
    from psycopg_pool import ConnectionPool

    from ferroscore.models.registry import ModelRegistry

    with ConnectionPool(database_url, min_size=1, max_size=1, open=True) as pool:
        registry = ModelRegistry(pool, build)
        registry.ensure_demo()
        version = registry.register(
            name, artifact.read_bytes(), schema.read_text(),
            thresholds=None if thresholds is None else json.dumps(thresholds),
        )["version"]  # fmt: skip
        registry.activate(name, version)


@contextmanager
def fraud_server(
    database_url: str, fraud: FraudModels, directory: Path, **env: str
) -> Iterator[ServerProcess]:
    """A server on `database_url` serving the demo model and "card-fraud" (the LightGBM
    model with `FRAUD_THRESHOLDS`), with `env`; its log in `directory`."""
    register(database_url, "card-fraud", fraud.lightgbm, fraud.schema, FRAUD_THRESHOLDS)
    with serving({"DATABASE_URL": database_url, **env}, directory / "server.log") as srv:
        yield srv


def push_and_wait(server: ServerProcess, name: str, *args: str | Path) -> None:
    """`ferroscore models push NAME ARGS --activate` to the server, as a user runs it; returns
    once the server serves the model."""
    pushed = subprocess.run(
        [sys.executable, "-m", "ferroscore", "models", "push", name, *map(str, args),
         "--activate", "--url", server.url],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "FERROSCORE_API_KEY": server.key or ""},
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    deadline = time.monotonic() + 20
    while server.request("GET", f"/v1/models/{name}")[0] != 200:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)


def wait_logged(database_url: str, request_id: str, rows: int = 1) -> list[tuple[Any, str]]:
    """A request's `(features, decision)` rows in the decision log, in row order, once its
    `rows` rows are written (the log writes in the background)."""
    import psycopg

    from ferroscore.decisionlog.rows import FEATURES

    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(database_url) as conn:
            found = conn.execute(
                f"SELECT {FEATURES}, decision FROM decisions d WHERE request_id = %s"
                " ORDER BY row_index",
                (request_id,),
            ).fetchall()
        if len(found) >= rows:
            return found
        assert time.monotonic() < deadline, f"{len(found)} of {rows} rows of {request_id} logged"
        time.sleep(0.05)


def _decoded(raw: bytes) -> dict[str, Any]:
    """A JSON body; an empty one as {}; anything else as {"raw": text}, for the assertion."""
    if not raw:
        return {}
    try:
        decoded: dict[str, Any] = json.loads(raw)
    except ValueError:
        return {"raw": raw.decode(errors="replace")}
    return decoded


def multipart(files: dict[str, bytes], fields: dict[str, bytes | str]) -> tuple[bytes, str]:
    """A multipart/form-data body as curl -F sends it, and its content type."""
    boundary = "----ferroscore-test-boundary"
    parts = []
    for name, data in files.items():
        head = f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"'
        parts.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + data + b"\r\n")
    for name, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        head = f'Content-Disposition: form-data; name="{name}"'
        parts.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def stub_service(endpoints: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    """A service that is never started, serving `endpoints` (name -> Endpoint) from a fixed
    catalog and keeping what it would log in `service.decisions.recorded`."""
    from types import MappingProxyType

    from ferroscore.config import Settings
    from ferroscore.models.catalog import Served
    from ferroscore.serving.service import Service

    svc = Service(Settings.from_env(env or {}), "host=/nonexistent")
    snapshot = MappingProxyType({"default": {name: Served(e) for name, e in endpoints.items()}})

    class Catalog:
        def current(self) -> Any:
            return snapshot

        def of(self, tenant: str) -> Any:
            return self.current().get(tenant, {})

    class Log:
        def __init__(self) -> None:
            self.recorded: list[Any] = []

        def record(self, decision: Any, role: str, tenant: str) -> None:
            self.recorded.append(decision)

    svc.catalog = Catalog()
    svc.decisions = Log()
    return svc


@dataclass(frozen=True)
class Outcome:
    """One request of a `Load`: when it was sent and answered, and its status or error."""

    sent: float
    ended: float
    result: int | str
    request_id: str | None


class Load:
    """`clients` threads scoring the demo model over keep-alive connections until stopped,
    each request recorded. A client whose request fails opens a new connection for the next."""

    def __init__(
        self, url: str, clients: int, headers: dict[str, str] | None = None, rows: int = 0
    ) -> None:
        """`rows`: send batches of that many copies of the demo example, else the example."""
        from ferroscore.models.registry import DEMO_MODEL

        host, port = url.removeprefix("http://").split(":")
        self._address = (host, int(port))
        self._path = f"/v1/models/{DEMO_MODEL}/score"
        example = resources.files("ferroscore.demo").joinpath("example.json").read_bytes()
        self._body = example
        if rows:
            self._body = json.dumps({"rows": [json.loads(example)] * rows}).encode()
        self._headers = {"content-type": "application/json", **(headers or {})}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _client(self) -> None:
        import http.client

        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            sent, request_id = time.monotonic(), None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(*self._address, timeout=10)
                conn.request("POST", self._path, self._body, self._headers)
                response = conn.getresponse()
                body = response.read()
                result: int | str = response.status
                if response.status == 200:
                    request_id = json.loads(body)["request_id"]
            except (OSError, http.client.HTTPException) as e:
                result = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(0.01)
            with self._lock:
                self.outcomes.append(Outcome(sent, time.monotonic(), result, request_id))
        if conn is not None:
            conn.close()

    def results(self, since: float = 0.0, until: float = float("inf")) -> Counter[int | str]:
        """How the requests sent in [since, until) ended."""
        with self._lock:
            return Counter(o.result for o in self.outcomes if since <= o.sent < until)

    def wait_answers(self, n: int, timeout: float = 30) -> None:
        """Until `n` more requests were answered 200."""
        target = self.results()[200] + n
        deadline = time.monotonic() + timeout
        while self.results()[200] < target:
            assert time.monotonic() < deadline, f"not {n} more answers: {self.results()}"
            time.sleep(0.02)


@contextmanager
def fresh_database(postgres_server: str, until: str | None = None) -> Iterator[str]:
    """A new database on the server, migrated (up to `until`); dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from ferroscore.migrations import migrate

    name = f"ferroscore_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    params = conninfo_to_dict(postgres_server)
    params["dbname"] = name
    url = make_conninfo(**params)
    migrate(url, until)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


def ferroscore(
    *args: str | Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`ferroscore ARGS` as a user runs it; `check`: it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "ferroscore", *map(str, args)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


#: The Debian Chromium the browser tests drive (CI installs it), if any.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def offline_page(address: str) -> Iterator[tuple[Page, list[str]]]:
    """A headless Chromium page that reaches `address`'s host only: every request to another
    host is aborted and its URL listed (the second item), for the test to find empty."""
    from playwright.sync_api import Route, sync_playwright

    ours = urlparse(address).netloc
    elsewhere: list[str] = []

    def only_ours(route: Route) -> None:
        if urlparse(route.request.url).netloc == ours:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", only_ours)
            yield page, elsewhere
        finally:
            browser.close()
