"""Prometheus metrics, right with several serving processes and cheap on the request path.

- Requests and their latency, by method, route (the table's template) and status: each
  worker thread counts into a dict of its own, so there is no lock and no lost increment
  between threads.
- Scores by model, version and the thresholds' decision: counted in Rust by each endpoint
  as it scores (`Endpoint.stats`).
- Validation failures by the code of each problem: counted where the 4xx is made.
- Input warnings (a value outside its training range, an unknown category scored as
  missing) by model, feature and code: counted where the decision is recorded.
- The decision log's queue and the database pool: read when a snapshot is taken.
- Restarts of serving processes: counted by the supervisor on the board all processes share,
  read once per scrape.

Every second a thread of each serving process writes a snapshot of its counts to
`<dir>/<pid>.json` (the directory is made before Robyn forks). `GET /metrics` adds the
snapshots of the live processes, its own read afresh, and renders them with
prometheus_client. A process that dies takes its counts with it: a counter reset, which
Prometheus's `rate()` expects."""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from ferroscore._core import SCORE_BOUNDS
from ferroscore.pipeline import Call, Handler, Reply, error_reply

log = logging.getLogger(__name__)

#: Upper bounds of the latency histogram, in seconds.
LATENCY_BOUNDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Seconds between two snapshots of a process.
SNAPSHOT_S = 1.0


class ThreadCounters:
    """Counts by key, each thread into a dict of its own; `read` adds them up. A value is
    `[count, sum, bucket counts...]`."""

    def __init__(self, bounds: tuple[float, ...] = ()) -> None:
        self._bounds = bounds
        self._local = threading.local()
        self._stores: list[dict[Any, list[float]]] = []
        self._lock = threading.Lock()

    def _store(self) -> dict[Any, list[float]]:
        try:
            store: dict[Any, list[float]] = self._local.store
        except AttributeError:
            store = self._local.store = {}
            with self._lock:
                self._stores.append(store)
        return store

    def add(self, key: Any, value: float = 0.0) -> None:
        """Counts one `key`, with `value` (a latency) into the sum and the buckets."""
        store = self._store()
        counts = store.get(key)
        if counts is None:
            counts = store[key] = [0.0] * (2 + len(self._bounds) + 1)
        counts[0] += 1
        if self._bounds:
            counts[1] += value
            counts[2 + bisect.bisect_left(self._bounds, value)] += 1

    def read(self) -> dict[Any, list[float]]:
        with self._lock:
            stores = list(self._stores)
        total: dict[Any, list[float]] = {}
        for store in stores:
            # dict() copies in C, under the GIL: a consistent copy of a live dict.
            for key, counts in dict(store).items():
                into = total.setdefault(key, [0.0] * len(counts))
                for i, x in enumerate(list(counts)):
                    into[i] += x
        return total


#: This process's counters (module state: each forked serving process has its own).
REQUESTS = ThreadCounters(LATENCY_BOUNDS)
FAILURES = ThreadCounters()
WARNINGS = ThreadCounters()


def observe(method: str, route: str, status: int, seconds: float) -> None:
    """Counts one answered request."""
    REQUESTS.add((method, route, status), seconds)


def count_warnings(model: str, warnings: list[dict[str, Any]]) -> None:
    """Counts each warning of a scored request by model, feature and code."""
    for w in warnings:
        WARNINGS.add((model, w["feature"], w["code"]))


def count_failures(errors: list[dict[str, str]], fallback: str) -> None:
    """Counts each problem of a refused request by its code (`fallback` when it has none)."""
    if not errors:
        FAILURES.add(fallback)
    for e in errors:
        FAILURES.add(e.get("code") or fallback)


Snapshot = dict[str, Any]
#: Gauges whose processes' values are not added up: the worst of them is what matters.
MAX_GAUGES = frozenset({"ferroscore_decision_flush_lag_seconds"})


class Metrics:
    """This process's snapshots, and the `/metrics` handler that adds all processes'."""

    def __init__(
        self,
        directory: Path | None,
        process: Callable[[], Snapshot],
        restarts: Callable[[], int] = lambda: 0,
    ) -> None:
        """`process`: the gauges and score counts this process reads when a snapshot is
        taken (see `Service.metrics_snapshot`); `restarts`: the serving processes' restarts
        so far, the same in every process."""
        self.directory = directory
        self._process = process
        self._restarts = restarts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)

    def start(self) -> None:
        if self.directory is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.directory is not None:
            (self.directory / f"{os.getpid()}.json").unlink(missing_ok=True)

    def snapshot(self) -> Snapshot:
        requests = [[*key, *counts] for key, counts in REQUESTS.read().items()]
        failures = [[key, counts[0]] for key, counts in FAILURES.read().items()]
        warnings = [[*key, counts[0]] for key, counts in WARNINGS.read().items()]
        return {"requests": requests, "failures": failures, "warnings": warnings,
                **self._process()}  # fmt: skip

    def _run(self) -> None:
        assert self.directory is not None
        path = self.directory / f"{os.getpid()}.json"
        while not self._stop.wait(SNAPSHOT_S):
            try:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self.snapshot()))
                tmp.replace(path)
            except Exception:
                log.exception("metrics: the snapshot was not written")

    def all_snapshots(self) -> list[Snapshot]:
        """This process's, fresh, and each other live serving process's latest."""
        found = [self.snapshot()]
        if self.directory is None:
            return found
        for path in self.directory.glob("*.json"):
            pid = int(path.stem)
            if pid == os.getpid() or not _alive(pid):
                continue
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # being replaced, or gone: the next scrape has it
        return found

    def handler(self, operator_tenant: str) -> Handler:
        """The scrape, for callers of `operator_tenant` only: it names every tenant's models
        and counts."""

        def handle(call: Call) -> Reply:
            if call.caller is not None and call.caller.tenant != operator_tenant:
                return error_reply(403, "operator_only", "the metrics name every tenant's models:"
                                   f" only a key of the operator's tenant ({operator_tenant!r})"
                                   " reads them")  # fmt: skip
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Collector(self.all_snapshots(), self._restarts()))
            return Reply(200, generate_latest(registry), {"content-type": CONTENT_TYPE_LATEST})

        return handle


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cumulative(counts: list[float], bounds: tuple[float, ...] | list[float]) -> list[Any]:
    running, out = 0.0, []
    for bound, n in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        running += n
        out.append((bound, running))
    return out


class _Collector(Collector):
    """The sum of the processes' snapshots, as Prometheus metric families."""

    def __init__(self, snapshots: list[Snapshot], restarts: int) -> None:
        self._snapshots = snapshots
        self._restarts = restarts

    def collect(self) -> Iterator[Metric]:
        requests: dict[tuple[str, str, str], list[float]] = {}
        failures: dict[str, float] = {}
        warned: dict[tuple[str, str, str], float] = {}
        scores: dict[tuple[str, ...], list[Any]] = {}
        gauges: dict[str, float] = {}
        for snap in self._snapshots:
            for method, route, status, *counts in snap["requests"]:
                _add(requests.setdefault((method, route, str(status)), [0.0] * len(counts)),
                     counts)  # fmt: skip
            for code, n in snap["failures"]:
                failures[code] = failures.get(code, 0.0) + n
            for model, feature, code, n in snap.get("warnings", ()):
                warned[model, feature, code] = warned.get((model, feature, code), 0.0) + n
            for labels, rows, buckets, total, decisions in snap["scores"]:
                entry = scores.setdefault(tuple(labels), [0.0, [0.0] * len(buckets), 0.0, {}])
                entry[0] += rows
                _add(entry[1], buckets)
                entry[2] += total
                for decision, n in decisions:
                    entry[3][decision] = entry[3].get(decision, 0.0) + n
            for name, value in snap["gauges"].items():
                combine = max if name in MAX_GAUGES else sum
                gauges[name] = combine((gauges.get(name, 0.0), value))
        yield from _request_families(requests)
        yield from _score_families(scores)
        failed = CounterMetricFamily("ferroscore_validation_failures",
                                     "Problems found in refused requests, by code",
                                     labels=["code"])  # fmt: skip
        for code, n in sorted(failures.items()):
            failed.add_metric([code], n)
        yield failed
        warnings = CounterMetricFamily("ferroscore_input_warnings",
                                       "Values scored with a warning (out_of_training_range, "
                                       "unknown_category), by model, feature and code",
                                       labels=["model", "feature", "code"])  # fmt: skip
        for labels, n in sorted(warned.items()):
            warnings.add_metric(list(labels), n)
        yield warnings
        yield CounterMetricFamily("ferroscore_process_restarts",
                                  "Serving processes started again after one died or was "
                                  "replaced", value=self._restarts)  # fmt: skip
        for name, (doc, value) in sorted(_gauges(gauges).items()):
            yield GaugeMetricFamily(name, doc, value=value)


def _add(into: list[float], counts: list[float]) -> None:
    for i, x in enumerate(counts):
        into[i] += x


def _request_families(requests: dict[tuple[str, str, str], list[float]]) -> Iterator[Metric]:
    labels = ["method", "route", "status"]
    total = CounterMetricFamily("ferroscore_http_requests", "Answered requests", labels=labels)
    latency = HistogramMetricFamily("ferroscore_http_request_duration_seconds",
                                    "Time in the handler, by route", labels=labels)  # fmt: skip
    for key, counts in sorted(requests.items()):
        total.add_metric(list(key), counts[0])
        latency.add_metric(list(key), _cumulative(counts[2:], LATENCY_BOUNDS), counts[1])
    yield total
    yield latency


def _score_families(scores: dict[tuple[str, ...], list[Any]]) -> Iterator[Metric]:
    labels = ["tenant", "model", "version", "role"]
    rows = CounterMetricFamily("ferroscore_scored_rows", "Rows scored for callers",
                               labels=labels)  # fmt: skip
    histogram = HistogramMetricFamily("ferroscore_score", "Scores of single-output models",
                                      labels=labels)  # fmt: skip
    decided = CounterMetricFamily("ferroscore_decisions", "Rows by the thresholds' decision",
                                  labels=[*labels, "decision"])  # fmt: skip
    for key, (n, buckets, total, decisions) in sorted(scores.items()):
        rows.add_metric(list(key), n)
        histogram.add_metric(list(key), _cumulative(buckets, SCORE_BOUNDS), total)
        for decision, count in sorted(decisions.items()):
            decided.add_metric([*key, decision], count)
    yield rows
    yield histogram
    yield decided


def _gauges(values: dict[str, float]) -> dict[str, tuple[str, float]]:
    docs = {
        "ferroscore_decision_spool_bytes": "Bytes of decisions spooled and not yet in PostgreSQL",
        "ferroscore_decision_flush_lag_seconds": "Age of the oldest spooled segment waiting "
        "to reach PostgreSQL (the worst process's)",
        "ferroscore_decision_rows_quarantined": "Decision rows PostgreSQL refused, kept in "
        "decisions_quarantine since the serving processes started (alert on any)",
        "ferroscore_db_pool_connections": "Open database connections in the pools",
        "ferroscore_db_pool_available": "Idle database connections in the pools",
        "ferroscore_db_pool_waiting": "Requests waiting for a database connection",
        "ferroscore_serving_processes": "Serving processes that answered this scrape",
    }
    return {name: (docs[name], values.get(name, 0.0)) for name in docs}
