"""The service's OpenAPI 3.1 document, generated from the route table, served at
`GET /openapi.json`: every route with its path parameters, summary, request body and
responses, the route hooks among them (tag "extensions"). One table feeds the adapter, this
document and the scope checks, so none of them can drift from the others. The document is
public; the request schemas of the models in it are those of the caller's tenant when the
request carries a valid key, and none otherwise. Robyn's own document is turned off: it is
malformed in 0.88."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson

from ferroscore.access.auth import PUBLIC
from ferroscore.models.catalog import NOTHING, Served
from ferroscore.models.registry import NAME_PATTERN
from ferroscore.pipeline import JSON_HEADERS, Call, Caller, Handler, Reply, Route

_PARAMETER = re.compile(r"\{(\w+)\}")
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "retry safely: the first response to a key is replayed",
    "schema": {"type": "string", "pattern": "^[\\x20-\\x7e]{1,255}$"},
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
VERSION = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_PATH_STRINGS = {
    "name": {"type": "string", "pattern": NAME_PATTERN.pattern},
    "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
}
_SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "an API key (`fsk_…`) or, when configured, a JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}  # fmt: skip
#: What every authenticated route may also answer.
_GUARDED = {401: "no valid API key or token", 403: "the key lacks this route's scope",
            429: "over the key's rate limit",
            503: "the key could not be checked (the database does not answer)"}  # fmt: skip


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
    if score is not None:
        # Without a key (or a model), the shape every model's request has.
        schemas |= _request_shapes("ScoreRequest", _ANY_FEATURES)
        content = {"schema": {"anyOf": requests} if requests else _ref("ScoreRequest")}
        score["requestBody"] = {"required": True, "content": {"application/json": content}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ferroscore",
            "version": _version(),
            "description": "Real-time model scoring.",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": _SECURITY_SCHEMES},
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def serve(
    table: Sequence[Route],
    served_to: Callable[[str], Mapping[str, Served]],
    identify: Callable[[Call], Caller | None],
) -> Handler:
    """The handler of `GET /openapi.json`: the document of `table` and the models the
    caller's tenant is served, built again only when that tenant's snapshot changes."""
    built: dict[str | None, tuple[Mapping[str, Served], bytes]] = {}

    def handle(call: Call) -> Reply:
        caller = identify(call)
        tenant = caller.tenant if caller is not None else None
        snapshot = served_to(tenant) if tenant is not None else NOTHING
        found = built.get(tenant)
        if found is None or found[0] is not snapshot:
            found = built[tenant] = (snapshot, orjson.dumps(document(table, snapshot)))
        return Reply(200, found[1], JSON_HEADERS)

    return handle


def _score_request(name: str, served: Served) -> dict[str, Any]:
    endpoint = served.champion
    features = {k: v for k, v in orjson.loads(endpoint.schema).items() if k != "$id"}
    features["description"] = f"The input of {name}, version {endpoint.version}"
    return {f"Features_{name}": features,
            **_request_shapes(f"ScoreRequest_{name}", _ref(f"Features_{name}"))}  # fmt: skip


#: Any model's features, when the document names no model.
_ANY_FEATURES = {
    "type": "object",
    "description": "the model's features by name",
    "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
}


def _request_shapes(component: str, ref: dict[str, Any]) -> dict[str, Any]:
    """One record `{"features": …}` or a batch `{"rows": [record, …]}`, as `component`."""
    explain = {"type": "integer", "minimum": 0}
    reference = {"type": ["string", "integer"], "minLength": 1,
                 "description": "your own id for the request, kept with its decisions and "
                                "echoed in the answer"}  # fmt: skip
    row = {"type": "object", "required": ["features"], "additionalProperties": False,
           "properties": {"features": ref}}  # fmt: skip
    record = {"type": "object", "required": ["features"], "additionalProperties": False,
              "properties": {"features": ref, "explain": explain, "id": reference}}  # fmt: skip
    batch = {"type": "object", "required": ["rows"], "additionalProperties": False,
             "properties": {"rows": {"type": "array", "items": row},
                            "partial": {"type": "boolean"}, "explain": explain,
                            "id": reference}}  # fmt: skip
    return {component: {"oneOf": [record, batch]}}


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
    if route.scope == PUBLIC:
        op["security"] = []
    parameters = [
        {"name": name, "in": "path", "required": True,
         "schema": VERSION if (name, v1) == ("version", True)
                   else _PATH_STRINGS.get(name, {"type": "string"})}
        for name in _PARAMETER.findall(route.path)
    ]  # fmt: skip
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema,
         "description": description}
        for name, (schema, description) in route.query.items()
    ]  # fmt: skip
    if route.idempotent:
        parameters.append(_IDEMPOTENCY_KEY)
    if parameters:
        op["parameters"] = parameters
    if route.request:
        content = dict(route.request)
        op["requestBody"] = {"required": True, "content": content}
    return op


def _responses(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {}
    answers = dict(route.responses or {200: "OK"})
    if route.scope != PUBLIC:
        answers = {**_GUARDED, **answers}
    if "{name}" in route.path:
        answers.setdefault(404, "no such model or version")
    if "{version}" in route.path and route.path.startswith("/v1/"):
        answers.setdefault(400, "a version that is not a positive integer")
    if route.idempotent:
        reused = "this Idempotency-Key was used with another request"
        answers |= {409: answers.get(409, "a request with this Idempotency-Key is still running"),
                    422: answers.get(422, reused),
                    400: answers.get(400, "an Idempotency-Key that is not 1 to 255 printable "
                                          "ASCII characters")}  # fmt: skip
    problem = {"application/problem+json": {"schema": _ref("Problem")}}
    for status, description in sorted(answers.items()):
        response: dict[str, Any] = {"description": description}
        if status >= 400 and route.path.startswith("/v2"):
            # The protocol's own errors, and the problems of the layers before it (keys,
            # limits, idempotency).
            response["content"] = {"application/json": {"schema": _ref("V2Error")}, **problem}
        elif status >= 400:
            response["content"] = problem
        out[str(status)] = response
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _version() -> str:
    try:
        return version("ferroscore")
    except PackageNotFoundError:
        return "0"
