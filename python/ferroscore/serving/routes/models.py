"""`GET /v1/models` and `GET /v1/models/{name}`: what is served now, and its input schema."""

from __future__ import annotations

from typing import Any

import orjson

from ferroscore._core import Endpoint
from ferroscore.models.catalog import Served
from ferroscore.pipeline import Call, Handler, Reply, json_reply
from ferroscore.serving.routes.score import model_not_found
from ferroscore.serving.service import Service


def _describe(e: Endpoint) -> dict[str, Any]:
    return {
        "name": e.name,
        "version": e.version,
        "format": e.model.format,
        "objective": e.model.objective,
        "n_features": e.model.n_features,
        "n_outputs": e.model.n_outputs,
    }


def _served(s: Served) -> dict[str, Any]:
    out = _describe(s.champion)
    out["shadow"] = {"version": s.shadow.version, "share": s.share} if s.shadow else None
    return out


def list_models(service: Service) -> Handler:
    def handle(call: Call) -> Reply:
        served = service.catalog.of(call.tenant)
        return json_reply(200, {"models": [_served(served[n]) for n in sorted(served)]})

    return handle


def get_model(service: Service) -> Handler:
    def handle(call: Call) -> Reply:
        served = service.catalog.of(call.tenant).get(name := call.params["name"])
        if served is None:
            return model_not_found(name)
        out = _served(served)
        out["input_schema"] = orjson.loads(served.champion.schema)
        thresholds = served.champion.thresholds
        out["thresholds"] = orjson.loads(thresholds) if thresholds else None
        return json_reply(200, out)

    return handle
