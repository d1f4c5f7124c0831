"""Model files as an attacker with a key of their own writes them, pushed to a real server
while another tenant scores: each is a 422 naming the field, no serving process dies or
restarts, and the other tenant gets every answer. A hostile artifact already in the registry
(stored before these checks) costs only its own model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import psycopg
import pytest

from support import Load, ServerProcess, children, create_key, serving

DEMO = resources.files("ferroscore.demo")
HEADER = (
    "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration={per_iteration}\nlabel_index=0\n"
    "max_feature_idx={max_feature_idx}\nobjective=binary sigmoid:1\nfeature_names={names}\n\n"
)


def lightgbm(trees: str = "", per_iteration: int = 1, max_feature_idx: int = 1) -> bytes:
    names = " ".join(f"f{i}" for i in range(max_feature_idx + 1)) if max_feature_idx < 8 else ""
    head = HEADER.format(per_iteration=per_iteration, max_feature_idx=max_feature_idx,
                         names=names)  # fmt: skip
    if not names:
        head = head.replace("feature_names=\n", "")
    return (head + trees + "end of trees\n").encode()


def lightgbm_tree(depth: int, leaf: str = "0.1") -> str:
    """A chain `depth` splits deep: each split sends its left side to a leaf."""
    join = " ".join
    left = [str(-(i + 1)) for i in range(depth)]
    right = [str(i + 1) for i in range(depth - 1)] + [str(-(depth + 1))]
    counts = join(str(depth + 1 - i) for i in range(depth))
    return (
        f"Tree=0\nnum_leaves={depth + 1}\nnum_cat=0\nsplit_feature={join(['0'] * depth)}\n"
        f"threshold={join(str(i) for i in range(depth))}\ndecision_type={join(['2'] * depth)}\n"
        f"left_child={join(left)}\nright_child={join(right)}\n"
        f"leaf_value={join([leaf] + ['0.1'] * depth)}\nleaf_count={join(['1'] * (depth + 1))}\n"
        f"internal_count={counts}\nshrinkage=1\n\n"
    )


def xgboost(change: Callable[[dict[str, Any]], None]) -> bytes:
    model = json.loads(DEMO.joinpath("model.json").read_bytes())
    change(model["learner"])
    return json.dumps(model).encode()


def _param(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(learner: dict[str, Any]) -> None:
        learner["learner_model_param"][name] = value

    return change


def _first_tree(**arrays: Any) -> Callable[[dict[str, Any]], None]:
    def change(learner: dict[str, Any]) -> None:
        learner["gradient_booster"]["model"]["trees"][0].update(arrays)

    return change


def _infinite_leaf(learner: dict[str, Any]) -> None:
    tree = learner["gradient_booster"]["model"]["trees"][0]
    leaf = tree["left_children"].index(-1)
    tree["split_conditions"][leaf] = 1e39


def _xgb_chain(depth: int) -> dict[str, Any]:
    """A chain `depth` splits deep: split i sends left to leaf depth + i, right to split i + 1
    (the last split's right is leaf 2·depth)."""
    n = 2 * depth + 1
    left, right = [-1] * n, [-1] * n
    for i in range(depth):
        left[i], right[i] = depth + i, i + 1 if i + 1 < depth else 2 * depth
    return {
        "left_children": left, "right_children": right, "split_indices": [0] * n,
        "split_conditions": [0.5] * n, "default_left": [0] * n, "split_type": [0] * n,
        "sum_hessian": [1.0] * n, "base_weights": [0.0] * n, "loss_changes": [0.0] * n,
        "parents": [0] * n,
        "categories": [], "categories_nodes": [], "categories_segments": [],
        "categories_sizes": [],
    }  # fmt: skip


#: name → (artifact, the field the refusal names, its code).
ATTACKS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "lightgbm max_feature_idx=1e12": (
        lambda: lightgbm(max_feature_idx=10**12), "max_feature_idx", "model_too_large"),
    "lightgbm num_tree_per_iteration=1e12, no trees": (
        lambda: lightgbm(per_iteration=10**12), "num_tree_per_iteration", "model_too_large"),
    "lightgbm max_feature_idx=2^64-1": (
        lambda: lightgbm(max_feature_idx=2**64 - 1), "max_feature_idx", "model_too_large"),
    "lightgbm chain 100,000 deep": (
        lambda: lightgbm(lightgbm_tree(100_000)), "tree 0: the tree's depth", "model_too_large"),
    "lightgbm NaN leaf": (lambda: lightgbm(lightgbm_tree(3, "nan")), "leaf_value",
                          "model_not_loadable"),
    "lightgbm infinite leaf": (lambda: lightgbm(lightgbm_tree(3, "inf")), "leaf_value",
                               "model_not_loadable"),
    "xgboost num_feature=1e12": (
        lambda: xgboost(_param("num_feature", "1000000000000")), "num_feature",
        "model_too_large"),
    "xgboost num_class=1e9": (
        lambda: xgboost(_param("num_class", "1000000000")), "num_class", "model_too_large"),
    "xgboost chain 20,000 deep": (
        lambda: xgboost(_first_tree(**_xgb_chain(20_000))), "tree 0: the tree's depth",
        "model_too_large"),
    "xgboost leaf 1e39 (infinite in float32)": (
        lambda: xgboost(_infinite_leaf), "split_conditions", "model_not_loadable"),
}  # fmt: skip


@pytest.fixture(scope="module")
def server(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"DATABASE_URL": module_database, "FERROSCORE_DECISION_FLUSH_MS": "20"}
    with serving(env, tmp_path_factory.mktemp("hostile") / "server.log") as srv:
        yield srv


def _serving_pids(server: ServerProcess) -> list[int]:
    return children(server.proc.pid)


def test_hostile_model_files_are_refused_and_cost_no_one_else(
    server: ServerProcess, module_database: str
) -> None:
    attacker = {"authorization": f"Bearer {create_key(module_database, 'acme')}"}
    schema = json.dumps({"type": "object", "properties": {}})
    before = _serving_pids(server)
    with Load(server.url, 2, server.headers) as load:
        load.wait_answers(20)
        for name, (artifact, field, code) in ATTACKS.items():
            status, refused = server.upload(
                "/v1/models/evil/versions", {"model": artifact()}, {"schema": schema}, attacker
            )
            assert (status, refused["code"]) == (422, code), (name, refused)
            assert refused["errors"][0]["pointer"] == "/model", name
            assert field in refused["message"], (name, refused["message"])
            if code == "model_too_large":
                assert refused["errors"][0]["field"] == field, name
                assert refused["errors"][0]["setting"].startswith("FERROSCORE_MODEL_MAX_")
        load.wait_answers(20)
    assert set(load.results()) == {200}, load.results()
    assert _serving_pids(server) == before, server.log()
    assert server.request("GET", "/v1/models/evil/versions", headers=attacker)[0] == 404


def test_a_hostile_artifact_in_the_registry_costs_only_its_own_model(
    server: ServerProcess, module_database: str
) -> None:
    """An artifact stored before registration checked it: the catalog cannot build it, so
    that model is not served, and every other model is."""
    tenant = "legacy"
    key = {"authorization": f"Bearer {create_key(module_database, tenant)}"}
    artifact = lightgbm(per_iteration=10**12)
    with psycopg.connect(module_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO models (tenant, name, version, format, artifact, input_schema,"
            " metadata, sha256, n_features, objective, created_by)"
            " VALUES (%s, 'old', 1, 'lightgbm-text', %s, '{}', '{}', 'x', 2, 'binary', 'test')",
            (tenant, artifact),
        )
        conn.execute("INSERT INTO active_models (tenant, name, version) VALUES (%s, 'old', 1)",
                     (tenant,))  # fmt: skip
        conn.execute("SELECT pg_notify('ferroscore_catalog', '{}')")
    before = _serving_pids(server)
    deadline = time.monotonic() + 10
    while "cannot serve legacy/old v1" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    status, body = server.request("POST", "/v1/models/old/score", b'{"features": {}}', key)
    assert (status, body["code"]) == (404, "model_not_found")
    example = DEMO.joinpath("example.json").read_bytes()
    assert server.request("POST", "/v1/models/breast-cancer/score", example)[0] == 200
    assert _serving_pids(server) == before
