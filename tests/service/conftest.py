"""A registry on the session database, emptied before and after each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from ferroscore.registry import ModelRegistry

from support import build, empty


@pytest.fixture
def registry(database_url: str) -> Iterator[ModelRegistry]:
    empty(database_url)
    with ConnectionPool(database_url, min_size=1, max_size=2, open=True) as pool:
        yield ModelRegistry(pool, build)
    empty(database_url)
