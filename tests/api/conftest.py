"""One real server for the API tests of a module, on the session's test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import ServerProcess

MAX_BODY_BYTES = 262_144


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
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
