"""A small HTTP client of the lifecycle API for the CLI (stdlib only): JSON in and out, and
`multipart/form-data` uploads with the artifact as a file and every other field as text."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """The server refused a call, or could not be reached; the message says why, in one line."""


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._auth = {"authorization": f"Bearer {api_key}"} if api_key else {}

    def get(self, path: str) -> Any:
        return self._send("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self._send("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self._send("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self._send("DELETE", path)

    def upload(self, path: str, filename: str, artifact: bytes, fields: Mapping[str, bytes]) -> Any:
        boundary = f"ferroscore-{secrets.token_hex(16)}"
        parts = [_part(boundary, "model", artifact, filename)]
        parts += [_part(boundary, name, value) for name, value in fields.items()]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}"
        return self._send("POST", path, body, content_type)

    def _send(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = body if isinstance(body, bytes) else None
        if body is not None and data is None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"content-type": content_type, **self._auth},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise ApiError(_describe(e.code, e.read())) from None
        except (urllib.error.URLError, OSError) as e:
            raise ApiError(f"cannot reach {self.url}: {getattr(e, 'reason', e)}") from None
        return json.loads(raw) if raw else None


def _part(boundary: str, name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
    return head + value + b"\r\n"


def _describe(status: int, raw: bytes) -> str:
    try:
        problem = json.loads(raw)
    except ValueError:
        return f"HTTP {status}: {raw[:200].decode(errors='replace')}"
    message = f"HTTP {status} {problem.get('code', '')}: {problem.get('message', '')}"
    pointers = [e["pointer"] for e in problem.get("errors", []) if e.get("pointer")]
    return message + (f" (at {pointers[0]})" if pointers else "")
