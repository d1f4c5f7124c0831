"""`GET /v1/models` and `GET /v1/models/{name}`: what is served, and its input schema."""

from __future__ import annotations

from typing import Any

import orjson
from robyn import Request, Response, Robyn

from ferroscore._core import Endpoint
from ferroscore.http import json_response, model_not_found
from ferroscore.service import Service


def _describe(e: Endpoint) -> dict[str, Any]:
    return {
        "name": e.name,
        "version": e.version,
        "objective": e.model.objective,
        "n_features": e.model.n_features,
        "n_outputs": e.model.n_outputs,
    }


def register(app: Robyn, service: Service) -> None:
    @app.get("/v1/models")
    def list_models() -> Response:
        return json_response(200, {"models": [_describe(e) for e in service.endpoints.values()]})

    @app.get("/v1/models/:name")
    def get_model(request: Request) -> Response:
        endpoint = service.endpoints.get(name := request.path_params["name"])
        if endpoint is None:
            return model_not_found(name)
        described = _describe(endpoint)
        described["input_schema"] = orjson.loads(endpoint.schema)
        return json_response(200, described)
