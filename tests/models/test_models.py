"""`GET /v1/models` and `GET /v1/models/{name}`: what is served and the schema it enforces."""

from __future__ import annotations

import json
from importlib import resources

from ferroscore.models.registry import DEMO_MODEL

from support import ServerProcess


def test_lists_the_served_models(server: ServerProcess) -> None:
    status, body = server.request("GET", "/v1/models")
    assert status == 200
    assert body["models"] == [
        {
            "name": DEMO_MODEL,
            "version": 1,
            "format": "xgboost-json",
            "objective": "binary:logistic",
            "n_features": 30,
            "n_outputs": 1,
            "shadow": None,
        }
    ]


def test_describes_one_model_with_its_schema(server: ServerProcess) -> None:
    status, body = server.request("GET", f"/v1/models/{DEMO_MODEL}")
    assert status == 200
    bundled = json.loads(resources.files("ferroscore.demo").joinpath("schema.json").read_text())
    assert body["input_schema"] == bundled
    status, body = server.request("GET", "/v1/models/nope")
    assert (status, body["code"]) == (404, "model_not_found")
