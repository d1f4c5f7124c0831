"""`POST /v1/models/{name}/score`: the body goes to the Rust core untouched; Python only picks
the endpoint, maps refusals to 4xx and hands the decision to the log."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from ferroscore._core import RequestError
from ferroscore.http import error_response, json_body, request_error_response
from ferroscore.service import Service


def register(app: Robyn, service: Service) -> None:
    @app.post("/v1/models/:name/score")
    def score(request: Request) -> Response:
        name = request.path_params["name"]
        endpoint = service.endpoints.get(name)
        if endpoint is None:
            return error_response(404, "model_not_found", f"no active model named {name!r}")
        try:
            body, decision = endpoint.score(request.body)
        except RequestError as e:
            return request_error_response(e)
        service.decisions.record(decision)
        return json_body(200, body)
