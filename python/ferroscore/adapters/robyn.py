"""The only module that knows Robyn (0.88): it registers the route table, turns Robyn's
request into a `Call` and a `Reply` into Robyn's response, and owns Robyn's quirks —

- routes go in without Robyn's Python wrapper, which converts every part of the request to
  Python on every call whatever the handler reads (+20% requests/s on a two-field handler,
  wrk, one core); `test_robyn_adapter` notices when those internals change;
- a path's other methods get a JSON 405 with `Allow`, where Robyn answers 404 text/plain,
  and `OPTIONS` a 204 with `Allow`;
- Robyn decodes `multipart/form-data` itself before any handler runs, keeping text fields by
  name but files only by file name (`forms.name_files` names them back), and answers a
  malformed form with a text/plain 500 that no hook of ours can reach (its global request
  headers, which could have steered it, are never applied in 0.88). The production front
  renames the media type so the raw body reaches `ferroscore.forms`, which decodes it
  strictly;
- Robyn takes over SIGINT/SIGTERM and then neither exits nor runs shutdown handlers, so the
  stop signals are blocked in every thread and handled by `lifecycle`;
- an exception in a handler becomes a JSON 500 and a log line, never Robyn's text/plain;
- Robyn's worker threads get a Python thread state per request, created and destroyed each
  time; `keep_thread_state` keeps one per thread instead (half the server CPU per request,
  `bench/ab.py`), and `test_robyn_calls_us_on_long_lived_threads` notices if Robyn starts
  using fresh threads.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import inspect
import logging
import shutil
import tempfile
import threading
from os import urandom
from pathlib import Path
from time import perf_counter, time
from typing import Any

from robyn import Request, Response, Robyn
from robyn.argument_parser import Config

from ferroscore.app import handlers, routes
from ferroscore.config import Settings
from ferroscore.lifecycle import on_stop_signal, stop_and_exit
from ferroscore.logs import AccessLog
from ferroscore.metrics import observe
from ferroscore.pipeline import Call, Handler, Route, error_reply
from ferroscore.service import Service

log = logging.getLogger(__name__)

#: The methods a path answers 405 to when it has no route for them (Robyn's router knows
#: these; any other method gets Robyn's own 405 text/plain before Python runs).
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT")
#: The longest `X-Request-ID` taken from a caller (printable ASCII); a longer one is replaced.
MAX_REQUEST_ID = 128


def to_call(request: Request, route: Route) -> Call:
    """A `Call` of a Robyn request. Headers and query stay Robyn's objects (their `get`s
    are what the pipeline asks of them); the peer and a decoded form are fetched only for
    the routes that read them."""
    headers = request.headers
    call = Call(
        route.method, route.path, request.path_params, request.query_params, headers,
        request.body,
    )  # fmt: skip
    given = headers.get("x-request-id")
    if (
        given is not None
        and 0 < len(given) <= MAX_REQUEST_ID
        and given.isascii()
        and (given.isprintable())
    ):
        call.request_id = given
    if not route.hot:
        call.state = {"peer": request.ip_addr}
        if "multipart/form-data" in (headers.get("content-type") or ""):
            # Robyn keeps a form's text fields by name, but its files only by file name.
            call.form = {k: v.encode() for k, v in request.form_data.items()}
            call.form_files = tuple(bytes(f) for f in request.files.values())
    return call


def _robyn_path(path: str) -> str:
    return path.replace("{", ":").replace("}", "")


#: OS threads whose Python thread state we keep (see `keep_thread_state`).
_kept_threads: set[int] = set()


def keep_thread_state() -> None:
    """Keeps the calling thread's Python thread state alive after Robyn releases it.

    Robyn's worker threads have no lasting thread state: each call creates one (pyo3's
    `PyGILState_Ensure`) and destroys it on release, with its frame stack, which cost a fifth
    of the serving core in mmap/munmap and page faults. One more `PyGILState_Ensure` on the
    thread, never released, leaves the count above zero, so the state outlives each request;
    the GIL is still released between requests. Done once per OS thread; the process ends
    with `os._exit`, so nothing needs releasing."""
    ident = threading.get_ident()
    _kept_threads.add(ident)
    ctypes.pythonapi.PyGILState_Ensure()
    log.debug("keeping the Python thread state of thread %d (%d kept)", ident, len(_kept_threads))


def _endpoint(route: Route, handler: Handler, counted: bool, access: AccessLog | None) -> Any:
    """The Robyn endpoint of a route: the pipeline, a JSON 500 for what escapes it, the
    request id echoed in `X-Request-ID` (the caller's, the decision's, or a new one), and,
    when asked, the request in the metrics and in the access log."""
    method, path = route.method, route.path

    def endpoint(request: Request) -> Response:
        if threading.get_ident() not in _kept_threads:
            keep_thread_state()
        started = perf_counter()
        call = to_call(request, route)
        try:
            reply = handler(call)
        except Exception:
            log.exception("%s %s failed", method, path, extra={"request_id": call.request_id})
            reply = error_reply(500, "internal_error", "the server failed; see its log")
        took = perf_counter() - started
        if counted:
            observe(method, path, reply.status, took)
        request_id = call.request_id or urandom(16).hex()
        if access is not None:
            caller = call.caller
            tenant, key_id = (caller.tenant, caller.key_id) if caller is not None else (None, None)
            access.record((time(), method, path, reply.status, took, request_id,
                           call.params.get("name"), tenant, key_id))  # fmt: skip
        headers = {**reply.headers, "x-request-id": request_id}
        return Response(reply.status, headers, reply.body)

    endpoint.__name__ = f"{route.method.lower()}_{route.path}"
    return endpoint


def _method_not_allowed(allowed: list[str]) -> Any:
    allow = ", ".join(sorted(allowed))
    reply = error_reply(405, "method_not_allowed", f"this path answers {allow}")
    reply.headers = {**reply.headers, "allow": allow}

    def endpoint(request: Request) -> Response:
        return Response(reply.status, reply.headers, reply.body)

    return endpoint


def _options(allowed: list[str]) -> Any:
    """`OPTIONS` on a path: 204 with the methods it answers (RFC 9110 §9.3.7)."""
    headers = {"allow": ", ".join(sorted({*allowed, "OPTIONS"}))}

    def endpoint(request: Request) -> Response:
        return Response(204, headers, b"")

    return endpoint


def add_route(app: Robyn, method: str, path: str, endpoint: Any) -> None:
    """Registers `endpoint` without Robyn's Python wrapper; falls back to Robyn's decorator
    if its internals are not the ones this was written against (robyn 0.88)."""
    try:
        from robyn.robyn import FunctionInfo, HttpMethod
        from robyn.router import Route as RobynRoute

        params = dict(inspect.signature(endpoint).parameters)
        function = FunctionInfo(endpoint, False, len(params), params, {})
        http_method = getattr(HttpMethod, method)
        app.router.routes.append(
            RobynRoute(http_method, path, function, False, False, endpoint.__name__, [])
        )
    except (ImportError, AttributeError, TypeError):
        log.warning("Robyn's route internals changed; %s %s goes through its wrapper", method, path)
        app.add_route(method, path, endpoint)


def create_app(settings: Settings, conninfo: str) -> Robyn:
    """A Robyn app serving the route table of a `Service` on the registry at `conninfo`."""
    config = Config()
    config.processes = settings.processes
    config.workers = settings.workers
    config.log_level = "WARN"
    # Robyn 0.88's generated OpenAPI document is malformed and its /docs needs a CDN.
    config.disable_openapi = True
    app = Robyn(__file__, config=config)
    metrics_dir = None
    if settings.metrics:
        # Before the fork, so that every serving process leaves its snapshots here.
        metrics_dir = Path(tempfile.mkdtemp(prefix="ferroscore-metrics-"))
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    service = Service(settings, conninfo, metrics_dir)

    def start() -> None:
        # In each serving process: after the fork when there are several.
        service.start()
        # What is loaded now lives as long as the process: out of the collector's sight,
        # full collections stay cheap (3 µs less server CPU per request, bench/ab.py).
        gc.freeze()
        single = settings.processes == 1
        on_stop_signal(lambda: stop_and_exit(service.stop, run_atexit=single))

    app.startup_handler(start)
    methods: dict[str, list[str]] = {}
    for route, handler in handlers(routes(service), service):
        path = _robyn_path(route.path)
        access = service.access if service.access_logged else None
        add_route(app, route.method, path, _endpoint(route, handler, settings.metrics, access))
        methods.setdefault(path, []).append(route.method)
    for path, allowed in methods.items():
        for method in METHODS:
            if method not in allowed:
                add_route(app, method, path, _method_not_allowed(allowed))
        add_route(app, "OPTIONS", path, _options(allowed))
    return app


def _stop_children() -> None:
    """The parent of several serving processes forwards the stop and waits for them."""
    import multiprocess  # Robyn forks its processes with it

    children = multiprocess.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=15)
        if child.is_alive():
            log.warning("serving process %s did not stop; killing it", child.pid)
            child.kill()


def run(settings: Settings, conninfo: str) -> None:
    """Serves until stopped. The port must have been checked free: Robyn binds it with
    SO_REUSEPORT, and with `_check_port` it would loop forever asking for another one."""
    app = create_app(settings, conninfo)
    if settings.processes > 1:
        # Robyn's main thread returns once the children are gone; Python then exits normally.
        on_stop_signal(_stop_children)
    app.start(host=settings.host, port=settings.port, _check_port=False)
