"""The registry stores versions in PostgreSQL and refuses what it could not serve."""

from __future__ import annotations

import json
from collections.abc import Iterator

import lightgbm as lgb
import numpy as np
import psycopg
import pytest
from sklearn.datasets import load_iris

from ferroscore import ModelLoadError, SchemaError
from ferroscore.registry import DEMO_MODEL, ModelRegistry


@pytest.fixture
def registry(database_url: str) -> Iterator[ModelRegistry]:
    """An empty registry, left empty again for whatever runs next on the session database."""
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE active_models, models")
    yield ModelRegistry(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE active_models, models")


def test_demo_is_registered_once_and_served(registry: ModelRegistry) -> None:
    assert registry.ensure_demo()
    assert not registry.ensure_demo()
    endpoints = registry.load_endpoints()
    assert list(endpoints) == [DEMO_MODEL]
    assert endpoints[DEMO_MODEL].version == 1
    assert endpoints[DEMO_MODEL].model.n_features == 30


def test_versions_count_up_and_activation_switches(
    registry: ModelRegistry, demo_model_bytes: bytes, demo_schema: str
) -> None:
    v1 = registry.register("m", demo_model_bytes, demo_schema)
    v2 = registry.register("m", demo_model_bytes, demo_schema)
    assert (v1, v2) == (1, 2)
    assert registry.load_endpoints() == {}
    registry.activate("m", v2)
    assert registry.load_endpoints()["m"].version == 2
    registry.activate("m", v1)
    assert registry.load_endpoints()["m"].version == 1


def test_unservable_versions_are_never_stored(
    registry: ModelRegistry, demo_model_bytes: bytes, demo_schema: str
) -> None:
    with pytest.raises(ModelLoadError):
        registry.register("m", b"{}", demo_schema)
    with pytest.raises(SchemaError):
        registry.register("m", demo_model_bytes, '{"type": "array"}')
    assert registry.is_empty()


def test_lightgbm_versions_are_detected_and_served(registry: ModelRegistry) -> None:
    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1},
        lgb.Dataset(iris.data, iris.target, feature_name=names),
        num_boost_round=5,
    )
    schema = {
        "type": "object",
        "properties": {
            n: {"type": "number", "x-ferroscore-column": i} for i, n in enumerate(names)
        },
        "required": names,
    }
    version = registry.register("iris", booster.model_to_string().encode(), json.dumps(schema))
    registry.activate("iris", version)
    endpoint = registry.load_endpoints()["iris"]
    assert endpoint.model.format == "lightgbm-text"
    body, _ = endpoint.score(json.dumps({"features": dict(zip(names, iris.data[0], strict=True))}))
    np.testing.assert_allclose(
        json.loads(body)["score"], booster.predict(iris.data[:1])[0], atol=1e-9
    )
