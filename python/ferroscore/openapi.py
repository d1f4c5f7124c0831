"""The service's OpenAPI 3.1 document, generated from the route table, served at
`GET /openapi.json`: every route with its path parameters, summary, request body and
responses, the route hooks among them (tag "extensions"). One table feeds the adapter, this
document and, once API keys exist, the scope checks, so none of them can drift from the
others. Robyn's own document is turned off: it is malformed in 0.88."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson

from ferroscore.pipeline import JSON_HEADERS, Call, Handler, Reply, Route

_PARAMETER = re.compile(r"\{(\w+)\}")
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "retry safely: the first response to a key is replayed",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}  # fmt: skip
_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "stable, machine-readable"},
        "message": {"type": "string"},
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


def document(table: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `table`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in table:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ferroscore",
            "version": _version(),
            "description": "Real-time model scoring.",
        },
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR}},
    }


def serve(table: Sequence[Route]) -> Handler:
    """The handler of `GET /openapi.json`: the document of `table`, built at the first call
    (when the table, this route included, is complete) and kept."""
    built: list[bytes] = []

    def handle(_: Call) -> Reply:
        if not built:
            built.append(orjson.dumps(document(table)))
        return Reply(200, built[0], JSON_HEADERS)

    return handle


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
        if status >= 400:
            error = {"schema": {"$ref": "#/components/schemas/Error"}}
            response["content"] = {"application/json": error}
        out[str(status)] = response
    return out


def _version() -> str:
    try:
        return version("ferroscore")
    except PackageNotFoundError:
        return "0"
