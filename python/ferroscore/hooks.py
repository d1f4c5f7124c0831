"""Hooks: a little Python around a score, without editing ferroscore. A module named by
`FERROSCORE_HOOKS` (or `ferroscore serve --hooks`) declares them with decorators:

    from ferroscore.hooks import Context, Outcome, Reject, Scored, decide, route

    @decide("card-fraud")
    def overlay(scored: Scored, ctx: Context) -> Outcome | None:
        '''Decline amounts over 5,000, whatever the score.'''
        return Outcome([
            "decline" if row.values["amount"] > 5000 else None for row in scored.rows
        ])

    @route("GET", "/v1/ext/fraud/ping")
    def ping(call: Call, ctx: Context) -> dict[str, str]:
        return {"pong": ctx.request_id}

- An **enrichment hook** runs after validation and before scoring, once per request: it
  returns the values of the features the schema marks `"x-ferroscore-source": "enrichment"`
  (callers may not send those), one per valid row, checked by the same rules as a caller's.
- A **decision hook** runs after scoring, once per request (a batch's rows together). It
  reads the valid rows (values as the caller sent them, scores, the thresholds' decision) and,
  on request, their contributions; it returns an `Outcome` (final decisions, reasons, extra
  response fields under `"extensions"`), or None to keep the thresholds' answer. It may refuse
  the request with `Reject`. The decision log records the final decisions.
- A **route hook** is an endpoint of its own under `/v1/ext/`, run through the service's
  pipeline. It returns a JSON-serialisable value (200) or a `Reply`.

Hooks may be `async`: an enrichment or decision hook that waits (a database lookup through
`psycopg.AsyncConnection`, an HTTP call) should be, since it is then awaited in place on the
serving process's event loop, beside every other request, holding no thread. A sync hook runs
on a pool of threads instead (a hand-off that costs tens of µs), unless it declares itself
`inline=True` (quick, pure Python, no I/O: called in place). Each runs within a time budget
(`FERROSCORE_HOOK_BUDGET_MS`, or the decorator's `budget_ms`): past it, the request gets 503
`hook_timeout` (an async hook is cancelled). A hook that raises or returns what it may not
gets 500 `hook_failed` naming it; neither stops the process, and a scored request's decision
is logged whatever its hooks did. A module that fails to import or
declares a bad hook stops the start-up with a message naming it."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson

from ferroscore.models.inference import model_features

if TYPE_CHECKING:
    import numpy as np
    from psycopg import AsyncConnection
    from psycopg_pool import ConnectionPool

    from ferroscore._core import Decision, Endpoint, Parsed
    from ferroscore.pipeline import Reply
    from ferroscore.serving.loop_pools import LoopPools

log = logging.getLogger("ferroscore.hooks")

T = TypeVar("T")
_MARK = "__ferroscore_hook__"
_EXT = re.compile(r"^/v1/ext/[A-Za-z0-9._~{}/-]+$")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Where a decision hook's extra fields go in the response.
EXTENSIONS = "extensions"


class HookError(Exception):
    """A hooks module that cannot be served: it names the module or hook and why."""


class HookRefusal(Exception):  # noqa: N818 - what it is: the request is refused
    """Why a hook stopped its request, and the error reply that says so."""

    status = 500
    code = "hook_failed"

    def reply(self) -> Reply:
        from ferroscore.pipeline import error_reply

        return error_reply(self.status, self.code, str(self))


class Reject(HookRefusal):
    """Refuses the request from a hook: `status` (4xx), a stable `code` and a `message`."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        if not 400 <= status <= 499:
            raise ValueError(f"Reject takes a 4xx status, not {status}")
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class TTLCache:
    """A small thread-safe cache whose entries expire: what a hook keeps between requests
    of one serving process (a lookup table, a rate it computed)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._items: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] < time.monotonic():
                self._items.pop(key, None)
                return default
            return hit[1]

    def set(self, key: Any, value: Any, ttl_s: float) -> None:
        with self._lock:
            if len(self._items) >= self._max:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[0] >= now}
                if len(self._items) >= self._max:
                    self._items.pop(next(iter(self._items)))
            self._items[key] = (time.monotonic() + ttl_s, value)

    def get_or_set(self, key: Any, ttl_s: float, make: Callable[[], T]) -> T:
        """The cached value, or `make()`'s, kept for `ttl_s` seconds."""
        missing = object()
        value = self.get(key, missing)
        if value is missing:
            value = make()
            self.set(key, value, ttl_s)
        return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Context:
    """What a hook knows of its request besides the data: ids, the caller's tenant and key id
    (a hook reading the decision log reads its tenant's rows), the process's database pool,
    a TTL cache it shares with every hook of the process, and whether it runs for a shadow
    version (scored beside the champion, after the answer: a hook with side effects may skip
    them). An `async def` hook queries through `connection()`."""

    request_id: str
    model: str | None
    version: int | None
    tenant: str | None
    key_id: str | None
    pool: ConnectionPool | None
    cache: TTLCache
    shadow: bool = False
    pools: LoopPools | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection of the process's async pool for the running event loop, for an
        `async def` hook: `async with ctx.connection() as conn: await conn.execute(...)`.
        Waiting for the database then holds no thread. Raises `Reject` (503) when the
        service is not connected."""
        if self.pools is None:
            raise Reject("unavailable", "the database is not connected", status=503)
        pool = await self.pools.get()
        async with pool.connection() as conn:
            yield conn


@dataclass(frozen=True)
class Record:
    """One valid row of a request before scoring: its index in the request and its values
    by feature name as the caller sent them (missing as None)."""

    index: int
    values: Mapping[str, Any]


class _Request:
    """The request body as the caller sent it, decoded only when a hook reads it: for fields
    the model does not read, which the schema lets through with `additionalProperties`."""

    def __init__(self, body: bytes | str, batch: bool, ndjson: bool) -> None:
        self._body = body
        self._ndjson = ndjson
        self.batch = batch

    @cached_property
    def body(self) -> Any:
        """The request body, decoded (JSON; NDJSON as a list of records)."""
        text = self._body.encode() if isinstance(self._body, str) else self._body
        if not self._ndjson:
            return orjson.loads(text)
        return [orjson.loads(line) for line in text.splitlines() if line.strip()]

    def raw(self, index: int) -> Mapping[str, Any]:
        """Row `index`'s features object as the caller sent it, unknown keys included."""
        body = self.body
        if not self.batch:
            return body["features"]  # type: ignore[no-any-return]
        records = body["rows"] if isinstance(body, dict) else body
        return records[index]["features"]  # type: ignore[no-any-return]


class Incoming(_Request):
    """What an enrichment hook reads, built only when it reads it: the request's valid rows
    before scoring, whether it was a batch, and (`raw`) the rows as the caller sent them."""

    def __init__(self, parsed: Parsed, body: bytes | str, ndjson: bool) -> None:
        super().__init__(body, parsed.batch, ndjson)
        self._parsed = parsed

    @cached_property
    def rows(self) -> list[Record]:
        return [Record(i, MappingProxyType(orjson.loads(v))) for i, v in self._parsed.records()]

    def __len__(self) -> int:
        """The number of valid rows, without decoding them."""
        return len(self._parsed.valid)


@dataclass(frozen=True)
class Row:
    """One scored row: its index in the request, its values by feature name as the caller
    sent them (a category as its string, missing as None), its scores and the thresholds'
    decision."""

    index: int
    values: Mapping[str, Any]
    scores: tuple[float, ...]
    decision: str | None

    @property
    def score(self) -> float:
        """The first (for most models, the only) score."""
        return self.scores[0]


class Scored(_Request):
    """What a decision hook reads, built only when it reads it: the request's valid rows,
    whether it was a batch, (`raw`) the rows as the caller sent them, and on request the
    rows' contributions."""

    def __init__(
        self, decision: Decision, endpoint: Endpoint, body: bytes | str, batch: bool, ndjson: bool
    ) -> None:
        super().__init__(body, batch, ndjson)
        self._decision = decision
        self._endpoint = endpoint

    @cached_property
    def rows(self) -> list[Row]:
        return [
            Row(i, MappingProxyType(orjson.loads(values)), tuple(scores), decided)
            for i, values, scores, decided in self._decision.records()
        ]

    @cached_property
    def indexes(self) -> list[int]:
        """The valid rows' indexes in the request, in order, without decoding the rows."""
        return self._decision.valid

    def __len__(self) -> int:
        """The number of valid rows, without decoding them."""
        return len(self.indexes)

    def contributions(self) -> np.ndarray:
        """Exact TreeSHAP contributions of the valid rows, as `Model.contributions`: one row
        per valid row, (features + 1) columns, bias last."""
        inputs = self._decision.inputs()
        return self._endpoint.model.contributions(inputs[self.indexes])

    @cached_property
    def features(self) -> tuple[str | None, ...]:
        """The feature name of each model column, the order of `contributions()`'s columns
        (None for a column no feature fills)."""
        names: list[str | None] = [None] * self._endpoint.model.n_features
        for name, spec in model_features(orjson.loads(self._endpoint.schema)).items():
            names[spec["x-ferroscore-column"]] = name
        return tuple(names)


@dataclass(frozen=True)
class Outcome:
    """A decision hook's answer, one entry per valid row in order (`Scored.rows`):
    `decisions` replace the thresholds' and `reasons` the response's reasons (any JSON; None
    keeps a row's), `extra` goes under the response's `"extensions"`."""

    decisions: Sequence[str | None] | None = None
    reasons: Sequence[Any] | None = None
    extra: Mapping[str, Any] | None = None


H = TypeVar("H", bound=Callable[..., Any])


@dataclass(frozen=True)
class Hook(Generic[H]):
    """A declared hook: its function and what it is declared for."""

    kind: str  # "decide" or "route"
    target: str  # the model name, or "METHOD /path"
    fn: H
    budget_ms: int | None
    #: A sync hook that is quick and does no I/O: called in place on the event loop, with no
    #: hand-off to a thread.
    inline: bool = False

    @property
    def name(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


def _declare(kind: str, target: str, budget_ms: int | None, inline: bool) -> Callable[[H], H]:
    if budget_ms is not None and budget_ms <= 0:
        raise ValueError("budget_ms must be positive")

    def mark(fn: H) -> H:
        if not callable(fn):
            raise TypeError(f"@{kind} decorates a function, not {fn!r}")
        if inline and inspect.iscoroutinefunction(fn):
            raise TypeError(f"@{kind}(inline=True) is for a sync hook; an async one is "
                            "awaited in place already")  # fmt: skip
        setattr(fn, _MARK, Hook(kind, target, fn, budget_ms, inline))
        return fn

    return mark


def enrich(model: str, *, budget_ms: int | None = None, inline: bool = False) -> Callable[[H], H]:
    """Declares `fn(incoming: Incoming, ctx: Context) -> Mapping[str, Sequence[Any]]` the
    enrichment of `model`: after validation and before scoring, it returns, for each feature
    the schema marks `"x-ferroscore-source": "enrichment"`, one value per valid row (None,
    bool, number or str), checked by that feature's rules. `inline`: see `Hook.inline`."""
    return _declare("enrich", model, budget_ms, inline)


def decide(model: str, *, budget_ms: int | None = None, inline: bool = False) -> Callable[[H], H]:
    """Declares `fn(scored: Scored, ctx: Context) -> Outcome | None` the decision hook of
    `model`: it runs after every scoring of the model's active version. `inline`: see
    `Hook.inline`."""
    return _declare("decide", model, budget_ms, inline)


def route(method: str, path: str, *, budget_ms: int | None = None) -> Callable[[H], H]:
    """Declares `fn(call: Call, ctx: Context)` the endpoint `method path` (under `/v1/ext/`):
    it returns a JSON-serialisable value or a `Reply`."""
    return _declare("route", f"{method.upper()} {path}", budget_ms, False)


@dataclass(frozen=True)
class Hooks:
    """The hooks a module declared."""

    decide: Mapping[str, Hook[Any]] = field(default_factory=dict)
    enrich: Mapping[str, Hook[Any]] = field(default_factory=dict)
    routes: Sequence[Hook[Any]] = ()
    module: str | None = None


def load(module_name: str | None) -> Hooks:
    """Imports the hooks module (or several, comma-separated) and checks their hooks; raises
    `HookError` naming what is wrong. None: no hooks."""
    names = [n.strip() for n in (module_name or "").split(",") if n.strip()]
    if not names:
        return Hooks()
    found: list[Hook[Any]] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as e:
            raise HookError(f"hooks module {name!r} failed to import: {e!r}") from e
        found += [getattr(v, _MARK) for v in vars(module).values() if hasattr(v, _MARK)]
    per_model: dict[str, dict[str, Hook[Any]]] = {"decide": {}, "enrich": {}}
    routes: dict[str, Hook[Any]] = {}
    for hook in found:
        _check_signature(hook)
        if hook.kind in per_model:
            same = per_model[hook.kind]
            if hook.target in same:
                other = same[hook.target].name
                raise HookError(f"{hook.name}: model {hook.target!r} already has {other}")
            same[hook.target] = hook
            continue
        method, _, path = hook.target.partition(" ")
        if method not in _METHODS:
            raise HookError(f"{hook.name}: method {method!r} is not one of {_METHODS}")
        if not _EXT.match(path):
            raise HookError(f"{hook.name}: a route's path is under /v1/ext/, not {path!r}")
        if hook.target in routes:
            raise HookError(f"{hook.name}: {hook.target} is already {routes[hook.target].name}")
        routes[hook.target] = hook
    return Hooks(per_model["decide"], per_model["enrich"], tuple(routes.values()), ",".join(names))


def _check_signature(hook: Hook[Any]) -> None:
    try:
        inspect.signature(hook.fn).bind(None, None)
    except (TypeError, ValueError):
        raise HookError(f"{hook.name}: a {hook.kind} hook takes two arguments") from None


class HookFailed(HookRefusal):
    """A hook raised or returned what it may not (500); the message names it."""


class HookTimeout(HookRefusal):
    """A hook ran past its budget (503)."""

    status = 503
    code = "hook_timeout"


class Runner:
    """Runs hooks within their time budgets: sync ones on a thread pool, async ones on an
    event loop of their own thread. A hook past its budget is abandoned, not stopped: its
    thread finishes in the background."""

    def __init__(self, budget_ms: int, threads: int = 8) -> None:
        self.budget_ms = budget_ms
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ferroscore-hook")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, hook: Hook[Any], *args: Any) -> Any:
        """`hook.fn(*args)`'s value; raises `Reject` as the hook did, `HookTimeout` past the
        budget, `HookFailed` for anything else."""
        future: Future[Any]
        if inspect.iscoroutinefunction(hook.fn):
            future = asyncio.run_coroutine_threadsafe(hook.fn(*args), self._event_loop())
        else:
            future = self._pool.submit(hook.fn, *args)
        try:
            return future.result(timeout=self._budget_s(hook))
        except (FutureTimeout, TimeoutError):
            future.cancel()
            raise self._timed_out(hook) from None
        except HookRefusal:
            raise
        except Exception as e:
            raise self._failed(hook, e) from e

    async def call_async(self, hook: Hook[Any], *args: Any) -> Any:
        """`hook.fn(*args)`'s value, on the running event loop, within the hook's budget: an
        `async def` hook is awaited in place (cancelled past its budget); a hook declared
        `inline` is called in place (it must be quick and do no I/O: every request on the
        loop waits for it); any other sync hook runs on the pool, so that it cannot stall
        the loop, and is abandoned past its budget. Raises as `run` does."""
        budget = self._budget_s(hook)
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget) as deadline:
                if inspect.iscoroutinefunction(hook.fn):
                    value = await hook.fn(*args)
                elif hook.inline:
                    value = hook.fn(*args)
                else:
                    value = await asyncio.wrap_future(self._pool.submit(hook.fn, *args))
        except TimeoutError:
            if deadline.expired():
                raise self._timed_out(hook) from None
            raise self._failed(hook, TimeoutError()) from None
        except HookRefusal:
            raise
        except Exception as e:
            raise self._failed(hook, e) from e
        if time.monotonic() - started > budget:  # an inline hook cannot be interrupted
            raise self._timed_out(hook)
        return value

    def wait_for(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` run to its end on the hooks' own event loop, for a thread that has no loop
        awaiting it (the shadow thread, a request with an Idempotency-Key)."""
        return asyncio.run_coroutine_threadsafe(work, self._event_loop()).result()

    def _budget_s(self, hook: Hook[Any]) -> float:
        return (hook.budget_ms or self.budget_ms) / 1000

    def _timed_out(self, hook: Hook[Any]) -> HookTimeout:
        ms = self._budget_s(hook) * 1000
        log.error("hook %s ran past its budget of %.0f ms", hook.name, ms)
        return HookTimeout(f"{hook.name} ran past its budget of {ms:.0f} ms")

    @staticmethod
    def _failed(hook: Hook[Any], e: Exception) -> HookFailed:
        log.exception("hook %s failed", hook.name)
        return HookFailed(f"{hook.name} raised {e!r}")

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="ferroscore-hook-loop", daemon=True
                ).start()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)


def reply_of(value: Any) -> Reply:
    """A route hook's return value as a Reply: a Reply as is, anything else as JSON."""
    from ferroscore.pipeline import JSON_HEADERS, Reply

    if isinstance(value, Reply):
        return value
    return Reply(200, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), JSON_HEADERS)


def checked_outcome(hook: Hook[Any], outcome: Any, n_rows: int) -> Outcome | None:
    """The hook's outcome after checking its shape; `HookFailed` names what is wrong."""
    if outcome is None:
        return None
    if not isinstance(outcome, Outcome):
        raise HookFailed(f"{hook.name} returned {type(outcome).__name__}, not an Outcome")
    for name in ("decisions", "reasons"):
        values = getattr(outcome, name)
        if values is not None and len(values) != n_rows:
            raise HookFailed(f"{hook.name} returned {len(values)} {name} for {n_rows} rows")
    for d in outcome.decisions or ():
        if d is not None and not (isinstance(d, str) and 0 < len(d) <= 64):
            raise HookFailed(f"{hook.name} returned the decision {d!r}: 1 to 64 characters")
    return outcome


__all__ = [
    "EXTENSIONS",
    "Context",
    "Hook",
    "HookError",
    "HookFailed",
    "HookRefusal",
    "HookTimeout",
    "Hooks",
    "Incoming",
    "Outcome",
    "Record",
    "Reject",
    "Row",
    "Runner",
    "Scored",
    "TTLCache",
    "decide",
    "enrich",
    "load",
    "route",
]
