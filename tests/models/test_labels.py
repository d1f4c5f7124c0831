"""Multiclass answers a person can read: class labels taken at registration (`--labels`, or
the training data's label column with `--target`), kept with the version, and named in the
answer (the predicted label, the probabilities by label), in V2 and in offline scores; the
plain list of scores stays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_iris

from support import ServerProcess, ferroscore, push_and_wait

CLASSES = ["setosa", "versicolor", "virginica"]


#: The models this module pushes stay out of the session database's listings.
OWN_DATABASE = True


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    data = load_iris(as_frame=True)
    x = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                        lgb.Dataset(x, data.target), num_boost_round=20)  # fmt: skip
    out = tmp_path_factory.mktemp("iris")
    booster.save_model(out / "model.txt")
    train = x.assign(species=pd.Categorical.from_codes(data.target, CLASSES))
    train.to_parquet(out / "train.parquet")
    return out / "model.txt", out / "train.parquet", x


def test_answers_name_the_classes(server: ServerProcess, iris: Any) -> None:
    model, data, x = iris
    push_and_wait(server, "iris", model, "--data", data, "--target", "species")
    _, version = server.request("GET", "/v1/models/iris/versions/1")
    assert version["labels"] == CLASSES
    want = lgb.Booster(model_file=str(model)).predict(x)

    record = {"features": x.iloc[120].to_dict()}
    status, answer = server.request("POST", "/v1/models/iris/score", orjson.dumps(record))
    assert status == 200, answer
    np.testing.assert_allclose(answer["score"], want[120], atol=1e-6)  # the plain list stays
    assert answer["label"] == CLASSES[int(np.argmax(want[120]))]
    assert list(answer["probabilities"]) == CLASSES
    np.testing.assert_allclose(list(answer["probabilities"].values()), want[120], atol=1e-6)

    batch = {"rows": [{"features": x.iloc[i].to_dict()} for i in (0, 60, 120)]}
    status, answer = server.request("POST", "/v1/models/iris/score", orjson.dumps(batch))
    assert status == 200, answer
    assert answer["labels"] == [CLASSES[int(np.argmax(want[i]))] for i in (0, 60, 120)]
    assert answer["labels"] == ["setosa", "versicolor", "virginica"]
    assert [list(p) for p in answer["probabilities"]] == [CLASSES] * 3

    # V2: the labels in the model's metadata, the predicted class as an output.
    status, meta = server.request("GET", "/v2/models/iris")
    assert status == 200, meta
    assert meta["parameters"]["labels"] == CLASSES
    assert {"name": "label", "datatype": "BYTES", "shape": [-1]} in meta["outputs"]
    inputs = [{"name": c, "shape": [2], "datatype": "FP64", "data": x[c].iloc[[0, 120]].tolist()}
              for c in x.columns]  # fmt: skip
    status, inferred = server.request("POST", "/v2/models/iris/infer",
                                      json.dumps({"inputs": inputs}).encode())  # fmt: skip
    assert status == 200, inferred
    [label] = [o for o in inferred["outputs"] if o["name"] == "label"]
    assert label["data"] == ["setosa", "virginica"]


def test_labels_are_checked_against_the_model(server: ServerProcess, iris: Any) -> None:
    model, data, _ = iris
    push_and_wait(server, "iris-named", model, "--data", data, "--labels", "a, b,c")
    assert server.request("GET", "/v1/models/iris-named/versions/1")[1]["labels"] == ["a", "b", "c"]
    schema = ferroscore("schema", "infer", model, "--data", data, "--exclude", "species").stdout
    files = {"model": model.read_bytes()}
    for labels in (["a", "b"], ["a", "a", "b"]):  # too few; one twice
        fields = {"schema": schema, "labels": json.dumps(labels)}
        status, refused = server.upload("/v1/models/iris-bad/versions", files, fields)
        assert (status, refused["code"]) == (422, "invalid_labels"), refused
        assert refused["errors"][0]["pointer"] == "/labels"
    status, refused = server.upload("/v1/models/iris-bad/versions", files,
                                    {"schema": schema, "labels": "[1, 2, 3]"})  # fmt: skip
    assert (status, refused["errors"][0]["pointer"]) == (422, "/labels")


def test_offline_scores_by_label(iris: Any, tmp_path: Path) -> None:
    model, data, x = iris
    out = tmp_path / "scores.parquet"
    ferroscore("score", model, "-i", data, "-o", out, "--labels", ",".join(CLASSES))
    table = pq.read_table(out)
    want = lgb.Booster(model_file=str(model)).predict(x)
    for j, label in enumerate(CLASSES):
        np.testing.assert_allclose(table.column(f"score_{label}").to_numpy(), want[:, j],
                                   atol=1e-6)  # fmt: skip
    assert table.column("label").to_pylist() == [CLASSES[i] for i in np.argmax(want, axis=1)]
    carried = table.column("species").cast("string").to_pylist()
    assert carried == pd.read_parquet(data)["species"].astype(str).tolist()
