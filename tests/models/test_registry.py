"""The registry stores versions in PostgreSQL, refuses what it could not serve, and keeps the
champion, rollback target and shadow of each model, auditing every change."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.datasets import load_iris

from ferroscore import ModelLoadError, SchemaError
from ferroscore.models.registry import DEMO_MODEL, ModelRegistry, RegistryError

from support import build


def test_demo_is_registered_once_and_served(registry: ModelRegistry) -> None:
    assert registry.ensure_demo()
    assert not registry.ensure_demo()
    [served] = registry.served()
    assert (served.name, served.version, served.shadow_version) == (DEMO_MODEL, 1, None)
    assert build(registry.artifact(DEMO_MODEL, 1)).model.n_features == 30


def test_versions_count_up_and_activation_switches(
    registry: ModelRegistry, demo_model_bytes: bytes, demo_schema: str
) -> None:
    v1 = registry.register("m", demo_model_bytes, demo_schema)
    v2 = registry.register("m", demo_model_bytes, demo_schema, metadata={"team": "risk"},
                           force=True)  # fmt: skip
    assert (v1["version"], v2["version"]) == (1, 2)
    assert (v1["existing"], v2["existing"]) == (False, False)
    assert (v2["format"], v2["n_features"], v2["objective"]) == ("xgboost-json", 30,
                                                                 "binary:logistic")  # fmt: skip
    assert v2["metadata"] == {"team": "risk"}
    assert len(v2["sha256"]) == 64
    assert registry.served() == []
    assert registry.activate("m", 2)["active_version"] == 2
    status = registry.activate("m", 1)
    assert (status["active_version"], status["previous_version"]) == (1, 2)
    assert registry.rollback("m")["active_version"] == 2


def test_shadow_delete_and_rollback_rules(
    registry: ModelRegistry, demo_model_bytes: bytes, demo_schema: str
) -> None:
    for _ in range(3):
        registry.register("m", demo_model_bytes, demo_schema, force=True)
    with pytest.raises(RegistryError) as e:
        registry.rollback("m")
    assert e.value.status == 404
    registry.activate("m", 1)
    with pytest.raises(RegistryError) as e:
        registry.rollback("m")
    assert (e.value.status, e.value.code) == (409, "no_previous_version")
    status = registry.set_shadow("m", 2, 0.25)
    assert status["shadow"] == {"version": 2, "share": 0.25}
    for version in (1, 2):
        with pytest.raises(RegistryError) as e:
            registry.delete("m", version)
        assert (e.value.status, e.value.code) == (409, "version_in_use")
    with pytest.raises(RegistryError) as e:
        registry.set_shadow("m", 1, 0.5)
    assert e.value.code == "shadow_is_champion"
    registry.delete("m", 3)
    with pytest.raises(RegistryError) as e:
        registry.version("m", 3)
    assert e.value.status == 404
    # Activating the shadow ends it; the old champion becomes the rollback target.
    status = registry.activate("m", 2)
    served = (status["active_version"], status["previous_version"], status["shadow"])
    assert served == (2, 1, None)
    actions = [(a["action"], a["from_version"], a["to_version"]) for a in registry.audit("m")]
    assert actions == [
        ("register", None, 1), ("register", None, 2), ("register", None, 3),
        ("activate", None, 1), ("shadow", None, 2), ("delete", 3, None), ("activate", 1, 2),
    ]  # fmt: skip


def test_each_rollback_steps_back_one_activation(
    registry: ModelRegistry, demo_model_bytes: bytes, demo_schema: str
) -> None:
    for _ in range(4):
        registry.register("m", demo_model_bytes, demo_schema, force=True)
    for version in (1, 2, 3, 4):
        registry.activate("m", version)
    # After an incident a person steps back, and back again: never toggling between two.
    assert registry.rollback("m")["active_version"] == 3
    status = registry.rollback("m")
    assert (status["active_version"], status["previous_version"]) == (2, 1)
    # A version deleted from the history is stepped over.
    registry.activate("m", 4)  # history 1, 2
    registry.delete("m", 2)
    status = registry.rollback("m")
    assert (status["active_version"], status["previous_version"]) == (1, None)
    with pytest.raises(RegistryError) as e:
        registry.rollback("m")
    assert (e.value.status, e.value.code) == (409, "no_previous_version")
    # Activating the same version twice is not a step.
    registry.activate("m", 3)
    registry.activate("m", 3)
    assert registry.rollback("m")["active_version"] == 1


def test_the_same_artifact_pushed_again_is_that_version(
    registry: ModelRegistry, demo_model_bytes: bytes, demo_schema: str
) -> None:
    first = registry.register("m", demo_model_bytes, demo_schema)
    again = registry.register("m", demo_model_bytes, demo_schema, metadata={"retry": 1})
    assert (again["version"], again["existing"]) == (1, True)
    assert again["metadata"] == first["metadata"]  # nothing stored
    # Another schema or other thresholds are another version; so is --force.
    other = json.loads(demo_schema)
    other["title"] = "the same features, another schema document"
    assert registry.register("m", demo_model_bytes, json.dumps(other))["version"] == 2
    thresholds = '[{"min": 0.5, "decision": "review"}, {"decision": "approve"}]'
    assert registry.register("m", demo_model_bytes, demo_schema,
                             thresholds=thresholds)["version"] == 3  # fmt: skip
    forced = registry.register("m", demo_model_bytes, demo_schema, force=True)
    assert (forced["version"], forced["existing"]) == (4, False)
    # Another model name has versions of its own.
    assert registry.register("n", demo_model_bytes, demo_schema)["version"] == 1
    actions = [a["action"] for a in registry.audit("m")]
    assert actions == ["register"] * 4


def test_unservable_versions_are_never_stored(
    registry: ModelRegistry, demo_model_bytes: bytes, demo_schema: str
) -> None:
    with pytest.raises(ModelLoadError):
        registry.register("m", b"{}", demo_schema)
    with pytest.raises(SchemaError):
        registry.register("m", demo_model_bytes, '{"type": "array"}')
    with pytest.raises(SchemaError) as e:
        registry.register("m", demo_model_bytes, demo_schema, thresholds='[{"min": 1}]')
    assert e.value.document == "thresholds"
    with pytest.raises(RegistryError) as r:
        registry.register("Bad Name!", demo_model_bytes, demo_schema)
    assert (r.value.status, r.value.code) == (400, "invalid_name")
    assert registry.models() == []


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
    created = registry.register("iris", booster.model_to_string().encode(), json.dumps(schema))
    endpoint = build(registry.artifact("iris", created["version"]))
    assert endpoint.model.format == "lightgbm-text"
    body, _ = endpoint.score(json.dumps({"features": dict(zip(names, iris.data[0], strict=True))}))
    np.testing.assert_allclose(
        json.loads(body)["score"], booster.predict(iris.data[:1])[0], atol=1e-9
    )
