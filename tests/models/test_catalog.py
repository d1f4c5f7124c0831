"""The catalog swaps whole snapshots when the registry NOTIFYs, and on its periodic reconcile
when a notification was missed; a reader's snapshot never changes under it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from ferroscore.models.catalog import Catalog
from ferroscore.models.registry import ModelRegistry

from support import build


@contextmanager
def serving_version_1(
    registry: ModelRegistry, url: str, model: bytes, schema: str, reconcile_s: float
) -> Iterator[Catalog]:
    """Two versions of "m", the first active, and a started catalog of them."""
    for _ in range(2):
        registry.register("m", model, schema, force=True)
    registry.activate("m", 1)
    catalog = Catalog(registry, build, url, reconcile_s=reconcile_s)
    catalog.start()
    try:
        yield catalog
    finally:
        catalog.stop()


def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout}s")


def test_notify_swaps_the_snapshot_within_a_second(
    registry: ModelRegistry, database_url: str, demo_model_bytes: bytes, demo_schema: str
) -> None:
    # A long reconcile period: only the NOTIFY can be what swaps it in time.
    with serving_version_1(registry, database_url, demo_model_bytes, demo_schema, 60) as catalog:
        before = catalog.of("default")
        assert before["m"].champion.version == 1
        assert before["m"].shadow is None
        registry.activate("m", 2)
        took = wait_for(lambda: catalog.of("default")["m"].champion.version == 2, 1.0)
        assert took < 1.0
        # The old snapshot is untouched: a request that holds it scores with version 1.
        assert before["m"].champion.version == 1
        registry.set_shadow("m", 1, 0.3)
        wait_for(lambda: catalog.of("default")["m"].shadow is not None, 1.0)
        served = catalog.of("default")["m"]
        assert served.shadow is not None
        assert (served.shadow.version, served.share) == (1, 0.3)
        # Unchanged versions are not rebuilt.
        assert served.champion is catalog.of("default")["m"].champion


def test_reconcile_catches_a_missed_notification(
    registry: ModelRegistry, database_url: str, demo_model_bytes: bytes, demo_schema: str
) -> None:
    with serving_version_1(registry, database_url, demo_model_bytes, demo_schema, 1) as catalog:
        # A change made behind the registry's back sends no NOTIFY.
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE active_models SET version = 2 WHERE name = 'm'")
        took = wait_for(lambda: catalog.of("default")["m"].champion.version == 2, 3.0)
        assert took <= 2.5
