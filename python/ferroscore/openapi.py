"""The service's OpenAPI 3.1 document, generated from the route table, served at
`GET /openapi.json`: every route with its path parameters, summary, request body and
responses, the route hooks among them (tag "extensions"). One table feeds the adapter, this
document and, once API keys exist, the scope checks, so none of them can drift from the
others. Robyn's own document is turned off: it is malformed in 0.88."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson

from ferroscore.catalog import Served
from ferroscore.pipeline import JSON_HEADERS, Call, Handler, Reply, Route

_PARAMETER = re.compile(r"\{(\w+)\}")
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "retry safely: the first response to a key is replayed",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}  # fmt: skip
_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details, with ferroscore's extension members",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:ferroscore:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable, machine-readable"},
        "message": {"type": "string", "description": "the detail, for earlier clients"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string", "description": "JSON Pointer to the field"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_V2_ERROR = {"type": "object", "required": ["error"],
             "properties": {"error": {"type": "string"}}}  # fmt: skip
_SCORE_PATH = "/v1/models/{name}/score"


def document(table: Sequence[Route], served: Mapping[str, Served] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `table`, with each `served` model's request schema as
    the component `ScoreRequest_<model>` (its input schema as `Features_<model>`)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in table:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    schemas: dict[str, Any] = {"Problem": _PROBLEM, "V2Error": _V2_ERROR}
    for name, model in sorted((served or {}).items()):
        schemas |= _score_request(name, model)
    score = paths.get(_SCORE_PATH, {}).get("post")
    requests = [{"$ref": f"#/components/schemas/ScoreRequest_{n}"} for n in sorted(served or {})]
    if score is not None and requests:
        content = {"schema": {"anyOf": requests}}
        score["requestBody"] = {"required": True, "content": {"application/json": content}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ferroscore",
            "version": _version(),
            "description": "Real-time model scoring.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def serve(table: Sequence[Route], current: Callable[[], Mapping[str, Served]]) -> Handler:
    """The handler of `GET /openapi.json`: the document of `table` and the models `current`
    serves, built again only when the served snapshot changes (a version activated)."""
    built: list[tuple[Mapping[str, Served], bytes]] = []

    def handle(_: Call) -> Reply:
        snapshot = current()
        if not built or built[0][0] is not snapshot:
            built[:] = [(snapshot, orjson.dumps(document(table, snapshot)))]
        return Reply(200, built[0][1], JSON_HEADERS)

    return handle


def _score_request(name: str, served: Served) -> dict[str, Any]:
    endpoint = served.champion
    features = {k: v for k, v in orjson.loads(endpoint.schema).items() if k != "$id"}
    features["description"] = f"The input of {name}, version {endpoint.version}"
    ref = {"$ref": f"#/components/schemas/Features_{name}"}
    record = {
        "type": "object",
        "required": ["features"],
        "properties": {"features": ref, "explain": {"type": "integer", "minimum": 0}},
    }
    batch = {"type": "object", "required": ["rows"],
             "properties": {"rows": {"type": "array", "items": record},
                            "partial": {"type": "boolean"},
                            "explain": {"type": "integer", "minimum": 0}}}  # fmt: skip
    return {f"Features_{name}": features,
            f"ScoreRequest_{name}": {"oneOf": [record, batch]}}  # fmt: skip


def _operation(route: Route) -> dict[str, Any]:
    words = re.sub(r"[^A-Za-z0-9]+", "_", route.path).strip("_")
    # The inference protocol names versions with strings ("1"); our own API with numbers.
    v1 = route.path.startswith("/v1/")
    op: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{words}",
        "summary": route.summary,
        "tags": ["extensions" if route.path.startswith("/v1/ext/") else route.path.split("/")[1]],
        "responses": _responses(route),
    }
    parameters = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer" if (name, v1) == ("version", True) else "string"}}
        for name in _PARAMETER.findall(route.path)
    ]  # fmt: skip
    if route.idempotent:
        parameters.append(_IDEMPOTENCY_KEY)
    if parameters:
        op["parameters"] = parameters
    if route.request:
        content = {media: {"schema": schema} for media, schema in route.request.items()}
        op["requestBody"] = {"required": True, "content": content}
    return op


def _responses(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {}
    answers = dict(route.responses or {200: "OK"})
    if route.idempotent:
        reused = "this Idempotency-Key was used with another request"
        answers |= {409: "a request with this Idempotency-Key is still running",
                    422: answers.get(422, reused)}  # fmt: skip
    for status, description in answers.items():
        response: dict[str, Any] = {"description": description}
        if status >= 400 and route.path.startswith("/v2"):
            response["content"] = {"application/json": {"schema": _ref("V2Error")}}
        elif status >= 400:
            response["content"] = {"application/problem+json": {"schema": _ref("Problem")}}
        out[str(status)] = response
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _version() -> str:
    try:
        return version("ferroscore")
    except PackageNotFoundError:
        return "0"
