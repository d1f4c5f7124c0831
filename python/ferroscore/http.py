"""JSON responses and the one error body shape every route answers with:
`{"code": ..., "message": ..., "errors": [{"pointer", "code", "message"}, ...]}`."""

from __future__ import annotations

from typing import Any

import orjson
from robyn import Response

from ferroscore._core import MalformedRequestError, PayloadTooLargeError, RequestError

JSON = "application/json"


def json_body(status: int, body: bytes) -> Response:
    """A response whose body is already JSON bytes."""
    return Response(status_code=status, headers={"content-type": JSON}, description=body)


def json_response(status: int, payload: Any) -> Response:
    return json_body(status, orjson.dumps(payload))


def error_response(
    status: int, code: str, message: str, errors: list[dict[str, str]] | None = None
) -> Response:
    return json_response(status, {"code": code, "message": message, "errors": errors or []})


def model_not_found(name: str) -> Response:
    return error_response(404, "model_not_found", f"no active model named {name!r}")


def request_error_response(e: RequestError) -> Response:
    """Maps a refused body to 400 (syntax), 413 (size) or 422 (schema)."""
    errors: list[dict[str, str]] = getattr(e, "errors", [])
    if isinstance(e, MalformedRequestError):
        return error_response(400, "malformed_json", str(e), errors)
    if isinstance(e, PayloadTooLargeError):
        return error_response(413, "payload_too_large", str(e), errors)
    return error_response(422, "validation_failed", str(e), errors)
