"""Shared fixtures: the demo model's files; a real PostgreSQL — DATABASE_URL when set, else
the embedded server — with a fresh, migrated database per test session; a registry on it,
emptied around each test that uses it; and one real server for the HTTP tests of a module,
on the session's database (or, for a module that asks, a database of its own)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from ferroscore.models.registry import ModelRegistry
from ferroscore.processes.embedded import start_embedded_postgres

from support import FraudModels, ServerProcess, build, empty, fresh_database, train_fraud_models

MAX_BODY_BYTES = 262_144

DEMO = resources.files("ferroscore.demo")


@pytest.fixture(scope="session")
def demo_model_bytes() -> bytes:
    return DEMO.joinpath("model.json").read_bytes()


@pytest.fixture(scope="session")
def demo_schema() -> str:
    return DEMO.joinpath("schema.json").read_text()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a running PostgreSQL server's maintenance database."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return start_embedded_postgres(Path(tmp_path_factory.mktemp("embedded")))


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> Iterator[str]:
    """A fresh database, migrated, dropped at the end of the session."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def module_database(postgres_server: str) -> Iterator[str]:
    """A database of the test module's own, so what it registers is seen by no other."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Starts servers for one test and stops whatever it started."""
    started: list[ServerProcess] = []

    def spawn(env: dict[str, str], port: int | None = None) -> ServerProcess:
        server = ServerProcess(env, tmp_path / f"server-{len(started)}.log", port)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def fraud(tmp_path_factory: pytest.TempPathFactory) -> FraudModels:
    """Real LightGBM and XGBoost models trained on synthetic card transactions with a
    categorical merchant, a boolean, an integer and missing amounts; the data as Parquet and
    CSV; the LightGBM schema inferred from it."""
    return train_fraud_models(tmp_path_factory.mktemp("fraud"))


@pytest.fixture
def registry(database_url: str) -> Iterator[ModelRegistry]:
    empty(database_url)
    with ConnectionPool(database_url, min_size=1, max_size=2, open=True) as pool:
        yield ModelRegistry(pool, build)
    empty(database_url)


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The module's server, on the session's database; a module that sets `OWN_DATABASE`
    gets one of its own (`module_database`), so that the models it pushes are not listed by
    the other modules' tests."""
    if getattr(request.module, "OWN_DATABASE", False):
        database_url = request.getfixturevalue("module_database")
    log_dir = tmp_path_factory.mktemp("server")
    env = {
        "DATABASE_URL": database_url,
        "FERROSCORE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "FERROSCORE_DECISION_FLUSH_MS": "20",
    }
    srv = ServerProcess(env, log_dir / "server.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()


@pytest.fixture
def max_body_bytes() -> int:
    return MAX_BODY_BYTES
