"""`POST /v1/models/{name}/score`: the body goes to the Rust core untouched; Python only picks
the endpoint, maps refusals to 4xx and hands the decision to the log.

One record `{"features": {...}}`, a batch `{"rows": [...], "partial": bool}`, or NDJSON
(`Content-Type: application/x-ndjson`, one record per line; `?partial=true`)."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from ferroscore._core import RequestError
from ferroscore.http import error_response, json_body, model_not_found, request_error_response
from ferroscore.routes.raw import add_raw_post_route
from ferroscore.service import Service

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def register(app: Robyn, service: Service) -> None:
    def score(request: Request) -> Response:
        endpoint = service.endpoints.get(name := request.path_params["name"])
        if endpoint is None:
            return model_not_found(name)
        content_type = request.headers.get("content-type") or ""
        ndjson = content_type.split(";", 1)[0].strip().lower() in NDJSON_TYPES
        partial = False
        flag = request.query_params.get("partial", None)
        if flag is not None:
            if flag.lower() not in _FLAGS:
                return error_response(400, "invalid_query", f"partial={flag!r}: use true or false")
            partial = _FLAGS[flag.lower()]
        try:
            body, decision = endpoint.score(request.body, ndjson=ndjson, partial=partial)
        except RequestError as e:
            return request_error_response(e)
        service.decisions.record(decision)
        return json_body(200, body)

    add_raw_post_route(app, "/v1/models/:name/score", score)
