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
  renames the media type so the raw body reaches `ferroscore.serving.forms`, which decodes it
  strictly;
- Robyn takes over SIGINT/SIGTERM and then neither exits nor runs shutdown handlers, so the
  stop signals are blocked in every thread and handled by `lifecycle`; a serving process
  drains itself (`drain`): it has actix stop accepting, half-closes its connections so that
  actix ends each one after its last answer (a `Connection: close` header from a handler is
  dropped by actix), and waits for actix's workers to end;
- one Robyn process per serving process (`supervisor` forks them); each beats on the board
  while it can answer — while its acceptor runs and not every worker thread is stuck in a
  request older than the health timeout;
- an exception in a handler becomes a JSON 500 and a log line, never Robyn's text/plain;
- Robyn's worker threads get a Python thread state per request, created and destroyed each
  time; `keep_thread_state` keeps one per thread instead (half the server CPU per request,
  `bench/ab.py`), and `test_robyn_calls_us_on_long_lived_threads` notices if Robyn starts
  using fresh threads.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import gc
import inspect
import logging
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from time import monotonic, perf_counter, sleep, time
from typing import Any
from urllib.parse import unquote_plus

from robyn import Request, Response, Robyn
from robyn.argument_parser import Config

from ferroscore._core import SpoolFullError
from ferroscore.config import Settings
from ferroscore.observability.metrics import observe
from ferroscore.pipeline import Call, Handler, Reply, Route, digits, error_reply
from ferroscore.processes import procnet
from ferroscore.processes.lifecycle import on_stop_signal, stop_and_exit
from ferroscore.processes.supervisor import Supervisor
from ferroscore.serving import idempotency
from ferroscore.serving.app import handlers, routes
from ferroscore.serving.routes.score import unrecorded
from ferroscore.serving.service import Service

log = logging.getLogger(__name__)

#: The methods a path answers 405 to when it has no route for them (Robyn's router knows
#: these; any other method gets Robyn's own 405 text/plain before Python runs).
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT")
#: The longest `X-Request-ID` taken from a caller (printable ASCII); a longer one is replaced.
MAX_REQUEST_ID = 128
#: actix's thread names, as Linux keeps them (15 bytes): the acceptor, and each worker.
ACCEPTOR, WORKER = "actix-server ac", "actix-rt|system"
#: How often a serving process beats on the board.
BEAT_S = 0.25
#: A drain with no request in flight and no open connection for this long is over.
QUIET_S = 0.5


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
        # Robyn leaves the query percent-encoded (its issue #1438); a repeated name's last
        # value counts, as Robyn's own `get` has it. The hot route's flags never need it.
        raw: dict[str, list[str]] = request.query_params.to_dict()
        decoded: dict[str, str] = {
            unquote_plus(k): unquote_plus(v[-1]) for k, v in raw.items() if v
        }
        call.query = decoded
        if "multipart/form-data" in (headers.get("content-type") or ""):
            # Robyn keeps a form's text fields by name, but its files only by file name.
            call.form = {k: v.encode() for k, v in request.form_data.items()}
            call.form_files = tuple(bytes(f) for f in request.files.values())
    return call


def _robyn_path(path: str) -> str:
    return path.replace("{", ":").replace("}", "")


#: OS threads whose Python thread state we keep (see `keep_thread_state`).
_kept_threads: set[int] = set()
#: When each worker thread's current request started (`perf_counter`), 0.0 between requests.
_busy: dict[int, float] = {}
#: actix's worker threads (native ids), known once its acceptor runs: the threads a drain
#: waits for. Threads they start (the hooks' pool) carry their name, so the name is not enough.
_actix_workers: set[int] = set()
#: The event loop awaited requests wait on (Robyn's, known from the first one), and when it
#: last ran a callback of the heartbeat's: a loop that stops turning stops the beat.
_loop: list[asyncio.AbstractEventLoop] = []
_loop_turned = [0.0]


def _loop_turns() -> None:
    _loop_turned[0] = perf_counter()


def _know_loop() -> None:
    """On the loop: remembers it for the heartbeat, once."""
    if not _loop:
        _loop.append(asyncio.get_running_loop())
        _loop_turns()


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


def _endpoint(route: Route, handler: Handler, service: Service) -> tuple[Any, bool]:
    """The Robyn endpoint of a route, and whether Robyn awaits what it returns: the
    pipeline, a JSON 500 for what escapes it, the request id echoed in `X-Request-ID` (the
    caller's, the decision's, or a new one), and, when asked, the request in the metrics and
    in the access log.

    With the durable decision log, or hooks, the hot routes run on the process's event loop:
    the worker thread hands each request over (Robyn's async path), and the pipeline leaves
    in the reply what is still to wait for (`Call.defer_commit`): its decision's ticket, and
    for a hooked model the rest of its stages (`Reply.pending`), which it awaits there. Any
    number of requests wait at once and no thread is held. Run on the worker thread instead,
    with only the wait on the loop, the two threads handed the GIL to each other at every
    request: 0.75x the requests/s in `bench/ab.py` (the note of issue 25)."""
    method, path = route.method, route.path
    counted = service.settings.metrics
    access = service.access if service.access_logged else None
    decisions = service.decisions
    hooked = bool(service.hooks.enrich or service.hooks.decide)
    deferred = route.hot and (decisions.mode == "durable" or hooked)

    def run(request: Request) -> tuple[Call, Reply, float]:
        started = perf_counter()
        call = to_call(request, route)
        call.defer_commit = deferred
        try:
            reply = handler(call)
        except Exception:
            log.exception("%s %s failed", method, path, extra={"request_id": call.request_id})
            reply = error_reply(500, "internal_error", "the server failed; see its log")
        if reply.status == 400 and _cut_short(call):
            reply = _incomplete(service.draining)
        return call, reply, started

    def answer(call: Call, reply: Reply, started: float) -> Response:
        took = perf_counter() - started
        if counted:
            observe(method, path, reply.status, took)
        request_id = call.identified()
        if access is not None:
            caller = call.caller
            tenant, key_id = (caller.tenant, caller.key_id) if caller is not None else (None, None)
            access.record((time(), method, path, reply.status, took, request_id,
                           call.params.get("name"), tenant, key_id))  # fmt: skip
        headers = {**reply.headers, "x-request-id": request_id}
        return Response(reply.status, headers, reply.body)

    def endpoint(request: Request) -> Response:
        thread = threading.get_ident()
        if thread not in _kept_threads:
            keep_thread_state()
        _busy[thread] = perf_counter()
        try:
            return answer(*run(request))
        finally:
            _busy[thread] = 0.0

    async def on_loop(request: Request) -> Response:
        """The pipeline on the event loop, awaiting what it leaves to wait for: the rest of
        a hooked request's stages, then the group commit."""
        _know_loop()
        call, reply, started = run(request)
        try:
            while reply.pending is not None:
                reply = await reply.pending
        except Exception:
            log.exception("%s %s failed", method, path, extra={"request_id": call.request_id})
            reply = error_reply(500, "internal_error", "the server failed; see its log")
        try:
            if reply.commit:
                await decisions.committed(reply.commit)
        except (SpoolFullError, OSError) as e:
            reply = unrecorded(e)
        return answer(call, reply, started)

    async def answered(response: Response) -> Response:
        return response

    def awaited(request: Request) -> Any:
        """On the worker thread: its Python thread state kept, the request handed to the
        loop (Robyn runs the coroutine there and awaits it; the worker goes on). A request
        with an Idempotency-Key runs here instead, as a sync route's does: its record is
        read and kept in PostgreSQL, which must not stall the loop."""
        if threading.get_ident() not in _kept_threads:
            keep_thread_state()
        if request.headers.get(idempotency.HEADER) is not None:
            return answered(endpoint(request))
        return on_loop(request)

    chosen = awaited if deferred else endpoint
    chosen.__name__ = f"{route.method.lower()}_{route.path}"
    return chosen, deferred


def _cut_short(call: Call) -> bool:
    """Whether the body is shorter than its `Content-Length`: actix hands Robyn what arrived
    when the connection's reading side ended early (a client gone, or a draining process
    half-closing it), and Robyn calls the handler with it."""
    declared = call.headers.get("content-length")
    if declared is None or not digits(declared):
        return False
    if "multipart/form-data" in (call.headers.get("content-type") or ""):
        return False  # Robyn decoded the form: its body is not handed over

    body = call.body.encode() if isinstance(call.body, str) else call.body
    return int(declared) != len(body or b"")


def _incomplete(draining: bool) -> Reply:
    if draining:
        reply = error_reply(503, "draining", "this server is stopping; send the request again")
        reply.headers = {**reply.headers, "retry-after": "1"}
        return reply
    return error_reply(400, "incomplete_body", "the body ended before its Content-Length")


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


def add_route(app: Robyn, method: str, path: str, endpoint: Any, awaited: bool = False) -> None:
    """Registers `endpoint` without Robyn's Python wrapper; falls back to Robyn's decorator
    if its internals are not the ones this was written against (robyn 0.88). `awaited`:
    Robyn calls `endpoint` on its worker thread and awaits what it returns on the event loop
    (Robyn's `is_async`, which it otherwise sets for `async def` handlers alone)."""
    try:
        from robyn.robyn import FunctionInfo, HttpMethod
        from robyn.router import Route as RobynRoute

        params = dict(inspect.signature(endpoint).parameters)
        function = FunctionInfo(endpoint, awaited, len(params), params, {})
        http_method = getattr(HttpMethod, method)
        app.router.routes.append(
            RobynRoute(http_method, path, function, False, False, endpoint.__name__, [])
        )
    except (ImportError, AttributeError, TypeError):
        if awaited:
            raise  # Robyn's wrapper would not await a plain function's awaitable
        log.warning("Robyn's route internals changed; %s %s goes through its wrapper", method, path)
        app.add_route(method, path, endpoint)


def create_app(service: Service) -> Robyn:
    """A Robyn app serving the route table of `service`, for one serving process."""
    settings = service.settings
    config = Config()
    config.processes = 1  # the supervisor forks the serving processes
    config.workers = settings.worker_threads()
    config.log_level = "WARN"
    # Robyn 0.88's generated OpenAPI document is malformed and its /docs needs a CDN.
    config.disable_openapi = True
    app = Robyn(__file__, config=config)

    def start() -> None:
        # In each serving process, after the fork.
        service.start()
        # What is loaded now lives as long as the process: out of the collector's sight,
        # full collections stay cheap (3 µs less server CPU per request, bench/ab.py).
        gc.freeze()
        threading.Thread(target=_beat, args=(service,), name="heartbeat", daemon=True).start()
        on_stop_signal(lambda: stop_and_exit(lambda: _drain_and_stop(service)))

    app.startup_handler(start)
    methods: dict[str, list[str]] = {}
    for route, handler in handlers(routes(service), service):
        path = _robyn_path(route.path)
        endpoint, awaited = _endpoint(route, handler, service)
        add_route(app, route.method, path, endpoint, awaited)
        methods.setdefault(path, []).append(route.method)
    for path, allowed in methods.items():
        for method in METHODS:
            if method not in allowed:
                add_route(app, method, path, _method_not_allowed(allowed))
        add_route(app, "OPTIONS", path, _options(allowed))
    return app


def _beat(service: Service) -> None:
    """Beats on the board while this process can answer: once actix accepts, and as long as
    one worker thread at least is free of requests older than the health timeout."""
    settings = service.settings
    while ACCEPTOR not in procnet.threads().values():
        sleep(0.01)
    # actix starts its workers before its acceptor, and they have started no thread yet.
    _actix_workers.update(tid for tid, name in procnet.threads().items() if name == WORKER)
    stuck_logged = False
    while True:
        now = perf_counter()
        stuck = sum(1 for t in list(_busy.values()) if t and now - t > settings.health_timeout_s)
        # A loop that ran none of the heartbeat's callbacks for that long is stuck too (a hook
        # that blocks it): every request waiting on it is.
        loop_stuck = bool(_loop) and now - _loop_turned[0] > settings.health_timeout_s
        if stuck < settings.worker_threads() and not loop_stuck:
            service.board.beat(service.slot)
            stuck_logged = False
        elif not stuck_logged:
            what = (
                "the event loop has not turned"
                if loop_stuck
                else ("every worker thread has been in one request")
            )
            log.error("%s for over %g s", what, settings.health_timeout_s)
            stuck_logged = True
        if _loop:
            _loop[0].call_soon_threadsafe(_loop_turns)
        sleep(BEAT_S)


def _catches(sig: int) -> bool:
    """Whether a handler is installed for `sig` in this process (Linux's SigCgt mask)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def drain(port: int, grace_s: float) -> None:
    """Stops taking connections on `port` and lets the open ones finish, for `grace_s` at most.

    actix stops accepting when its SIGTERM handler runs: SIGTERM is blocked in every thread
    (see `lifecycle`), so this thread unblocks it for itself and sends it to itself. The
    listening socket is then shut down, so that new connections are refused rather than left
    queued. Each open connection is half-closed for reading: actix still reads what its
    client has already sent, answers it, then sees the end of the stream and closes the
    connection. The drain is over when actix's workers have ended, which they do once their
    connections have, or once no request is in flight and no connection open for
    `QUIET_S`: what remains then are connections whose clients left (Robyn waits forever
    on a multipart body cut inside its closing boundary)."""
    deadline = monotonic() + grace_s
    if _catches(signal.SIGTERM):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        while ACCEPTOR in procnet.threads().values() and monotonic() < deadline:
            sleep(0.005)
    procnet.shutdown(port, procnet.LISTEN, socket.SHUT_RDWR)
    open_connections = procnet.shutdown(port, procnet.ESTABLISHED, socket.SHUT_RD)
    log.info("draining %d connections", open_connections)
    quiet_since = None
    while _actix_workers & procnet.threads().keys():
        now = monotonic()
        if now > deadline:
            log.warning("connections still open after the %g s grace period; closing them",
                        grace_s)  # fmt: skip
            return
        if any(_busy.values()) or procnet.descriptors(port, procnet.ESTABLISHED):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since > QUIET_S:
            log.info("no request in flight and no client left; closing what remains")
            return
        sleep(0.01)


def _drain_and_stop(service: Service) -> None:
    """Readiness answers 503 at once; connections are still taken for the drain delay, then
    refused, and the open ones finish within what is left of the grace period. The
    decisions are written last."""
    settings = service.settings
    service.drain()
    delay = min(settings.drain_delay_s, settings.grace_s)
    sleep(delay)
    drain(settings.port, settings.grace_s - delay)
    service.stop()


def _metrics_dir(settings: Settings) -> Path | None:
    """Where every serving process leaves its metrics snapshots: made before the first fork."""
    if not settings.metrics:
        return None
    directory = Path(tempfile.mkdtemp(prefix="ferroscore-metrics-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def supervisor(settings: Settings, conninfo: str) -> Supervisor:
    """The supervisor of `settings.processes` serving processes, each a Robyn app of one
    `Service` built here, before the first fork. The port must have been checked free:
    Robyn binds it with SO_REUSEPORT, and with `_check_port` it would loop forever asking
    for another one."""
    metrics_dir = _metrics_dir(settings)
    service = Service(settings, conninfo, metrics_dir)
    app = create_app(service)

    def serve(slot: int) -> None:
        service.slot = slot
        app.start(host=settings.host, port=settings.port, _check_port=False)

    def reaped(pid: int) -> None:
        if metrics_dir is not None:
            (metrics_dir / f"{pid}.json").unlink(missing_ok=True)

    return Supervisor(
        settings.processes, serve, service.board, grace_s=settings.grace_s,
        health_timeout_s=settings.health_timeout_s, start_timeout_s=settings.start_timeout_s,
        reaped=reaped,
    )  # fmt: skip
