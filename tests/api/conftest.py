"""One real server for the API tests of a module, on the session's test database (or, for a
module that asks, a database of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import ServerProcess

MAX_BODY_BYTES = 262_144


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
