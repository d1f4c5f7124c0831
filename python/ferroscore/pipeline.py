"""The request pipeline, free of any web framework: a `Call` in, a `Reply` out. Handlers are
plain functions of a Call; middleware wraps a handler (`(call, next) -> Reply`), and the app
composes them once. Only `adapters/robyn.py` translates to and from Robyn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from os import urandom
from typing import Any, Protocol

import orjson

JSON = "application/json"
JSON_HEADERS = {"content-type": JSON}
#: RFC 9457 problem details, the media type of every error of the `/v1` API.
PROBLEM_HEADERS = {"content-type": "application/problem+json"}
#: A problem's `type` is this URN and its stable code: a URI that names, not a page.
PROBLEM_TYPE = "urn:ferroscore:problem:"


class Headers(Protocol):
    """Request headers by lower-case name (a dict will do)."""

    def get(self, name: str, /) -> str | None: ...


class Query(Protocol):
    """Query parameters by name (a dict will do); the default is always passed."""

    def get(self, name: str, default: None, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from, once authenticated: the key (its public id, `jwt:<subject>`
    for a JWT, `anonymous` with authentication off), its tenant and its scopes."""

    key_id: str
    tenant: str
    scopes: frozenset[str]
    #: Requests per second this caller may send, and the burst above it; None: no limit.
    rate_per_s: float | None = None
    burst: int = 1

    @property
    def identity(self) -> str:
        """The caller within its tenant, for everything kept per caller (idempotency
        records, rate limits): two tenants' callers never share one, whatever their ids."""
        return f"{self.tenant}/{self.key_id}"


@dataclass(slots=True)
class Call:
    """One HTTP request as handlers see it. `headers` and `query` may be the server's own
    objects, read only through `get`, so that nothing is converted that no one reads."""

    method: str
    path: str
    params: Mapping[str, str]
    query: Query
    headers: Headers
    body: bytes | str
    #: Form fields when the server already decoded a `multipart/form-data` body.
    form: Mapping[str, bytes] | None = None
    #: The files of such a form, when the server did not keep their field names.
    form_files: tuple[bytes, ...] = ()
    #: Set by the adapter and middleware (the peer, ...); the hot routes run without it.
    state: dict[str, Any] | None = None
    #: Set by authentication; None on the public routes.
    caller: Caller | None = None
    #: The caller's `X-Request-ID`; else the scored decision's id, set by the score route.
    request_id: str | None = None
    #: The adapter awaits the decision log's group commit after the handler returns (on the
    #: event loop): a handler that records a decision leaves its ticket in `Reply.commit`
    #: instead of waiting. False: the handler waits for the disk itself.
    defer_commit: bool = False

    def header(self, name: str) -> str:
        """The header's value, or "" when absent."""
        return self.headers.get(name) or ""

    @property
    def tenant(self) -> str:
        """The caller's tenant; only routes that authenticate ask."""
        assert self.caller is not None, "an authenticated route's call has a caller"
        return self.caller.tenant

    def body_bytes(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body

    def identified(self) -> str:
        """The request's id: the caller's, the decision's, or a new one, kept from now on."""
        if self.request_id is None:
            self.request_id = urandom(16).hex()
        return self.request_id


@dataclass(slots=True)
class Reply:
    """A response: status, headers, body bytes. The default headers are one shared dict:
    copy it before changing it."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: JSON_HEADERS)
    #: The decision log's ticket this answer waits for before it is sent (0: none); see
    #: `Call.defer_commit`.
    commit: int = 0
    #: Set on a reply still to come (`later`): what the adapter awaits on the event loop for
    #: the real one. Only a handler whose call has `defer_commit` returns one.
    pending: Awaitable[Reply] | None = None


def later(reply: Awaitable[Reply]) -> Reply:
    """A reply still to come: the adapter awaits `reply` on the event loop (hooks awaited in
    place, then the group commit) and sends what it gives."""
    return Reply(0, b"", pending=reply)


def then(reply: Reply, next_: Callable[[Reply], Reply]) -> Reply:
    """`next_(reply)`, once `reply` is there: at once, or after it, on the event loop."""
    if reply.pending is None:
        return next_(reply)
    pending = reply.pending

    async def chained() -> Reply:
        return then(await pending, next_)

    return later(chained())


Handler = Callable[[Call], Reply]
Middleware = Callable[[Call, Handler], Reply]


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, orjson.dumps(payload))


def error_reply(
    status: int, code: str, message: str, errors: Sequence[Mapping[str, str]] = ()
) -> Reply:
    """The one error body: RFC 9457 problem details (`type`, `title`, `status`, `detail`) with
    the extension members `code` (stable, machine-readable), `message` (the detail, as
    clients of the first shape read it) and `errors` (`[{pointer, code, message}]`)."""
    problem = {
        "type": PROBLEM_TYPE + code, "title": _title(status), "status": status,
        "detail": message, "code": code, "message": message, "errors": list(errors),
    }  # fmt: skip
    return Reply(status, orjson.dumps(problem), PROBLEM_HEADERS)


def pointer(*tokens: str | int) -> str:
    """The RFC 6901 JSON Pointer of `tokens`, each escaped (`~` as `~0`, `/` as `~1`): every
    pointer a route builds from a name the caller chose goes through here."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def digits(text: str) -> bool:
    """Whether `text` is ASCII decimal digits only: `str.isdigit` also takes "²" and "٣",
    which `int` refuses."""
    return text.isascii() and text.isdigit()


def pointer_error(status: int, code: str, message: str, pointer: str) -> Reply:
    """The error body of one problem at one place of the request body (a JSON Pointer)."""
    return error_reply(
        status, code, message, [{"pointer": pointer, "code": code, "message": message}]
    )


def query_error(name: str, value: str, expected: str) -> Reply:
    """400 `invalid_query`: the query parameter `name` has a value it cannot have."""
    return error_reply(
        400,
        "invalid_query",
        f"{name}={value!r}: {expected}",
        [{"pointer": pointer("query", name), "code": "invalid_query", "message": expected}],
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def compose(handler: Handler, middleware: Sequence[Middleware]) -> Handler:
    """Wraps `handler` so the first middleware runs outermost."""
    for m in reversed(middleware):
        handler = _wrap(m, handler)
    return handler


def _wrap(m: Middleware, inner: Handler) -> Handler:
    def wrapped(call: Call) -> Reply:
        return m(call, inner)

    return wrapped


@dataclass(frozen=True)
class Route:
    """One row of the route table: what the adapter registers and what the OpenAPI document,
    scope checks and metrics labels read."""

    method: str
    path: str  # `{name}` parameters
    handler: Handler
    summary: str
    scope: str = "read"
    #: The request body, when it has one: media type → OpenAPI media type object (`schema`,
    #: and `encoding` for a form's JSON fields).
    request: Mapping[str, Any] | None = None
    #: Status → description of the responses it gives.
    responses: Mapping[int, str] = field(default_factory=dict)
    #: Hot routes skip the middleware that only the admin routes need.
    hot: bool = False
    #: Honours `Idempotency-Key` (see `ferroscore.serving.idempotency`).
    idempotent: bool = False
    #: Query parameters: name → (JSON schema, description), for the OpenAPI document.
    query: Mapping[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
