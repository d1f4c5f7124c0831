"""Shared fixtures: the demo model's files, and a real PostgreSQL — DATABASE_URL when set,
else the embedded server — with a fresh, migrated database per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ferroscore.embedded import start_embedded_postgres
from ferroscore.migrations import migrate

from support import FraudModels, ServerProcess, train_fraud_models

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


@contextmanager
def fresh_database(postgres_server: str) -> Iterator[str]:
    """A new database on the server, migrated; dropped afterwards."""
    name = f"ferroscore_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    params = conninfo_to_dict(postgres_server)
    params["dbname"] = name
    url = make_conninfo(**params)
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


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
