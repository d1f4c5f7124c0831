"""Logs: one JSON object per line (time, level, logger, message, and the request's fields
when there is a request), or plain text when stderr is a terminal; and an access log line
per answered request, refusals included.

The request path only puts a tuple on a queue (`AccessLog.record`); a thread of the
process formats the lines with orjson and writes them in batches, so a request never waits
on formatting or on stderr."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

#: The fields a log record may carry about its request (`extra={...}`).
REQUEST_FIELDS = ("request_id", "method", "route", "status", "latency_ms", "model", "tenant",
                  "key_id")  # fmt: skip


def _time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def json_lines(fmt: str, stream: TextIO | None = None) -> bool:
    """Whether `fmt` ("JSON", "TEXT" or "AUTO": text on a terminal) means JSON lines."""
    stream = stream or sys.stderr
    return fmt.upper() == "JSON" or (fmt.upper() == "AUTO" and not stream.isatty())


def configure(level: str, fmt: str, stream: TextIO | None = None) -> bool:
    """Sets up the root logger (see `json_lines`); returns whether the lines are JSON."""
    stream = stream or sys.stderr
    as_json = json_lines(fmt, stream)
    handler = logging.StreamHandler(stream)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return as_json


#: (time, method, route, status, seconds, request id, model, tenant, key id)
Access = tuple[float, str, str, int, float, str, str | None, str | None, str | None]


class AccessLog:
    """The access log of one process: `record` on the request path, the writing on a thread."""

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self._as_json = as_json
        self._stream = stream or sys.stderr
        self._queue: queue.SimpleQueue[Access | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self.started = False

    def start(self) -> None:
        self._thread.start()
        self.started = True

    def stop(self, timeout: float = 2.0) -> None:
        if self.started:
            self._queue.put(None)
            self._thread.join(timeout)

    def record(self, entry: Access) -> None:
        self._queue.put(entry)

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            lines = []
            while entry is not None:
                lines.append(self._line(entry))
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
            if lines:
                self._stream.write("".join(lines))
                self._stream.flush()
            if entry is None:
                return

    def _line(self, e: Access) -> str:
        at, method, route, status, seconds, request_id, model, tenant, key_id = e
        if not self._as_json:
            return (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))} ACCESS "
                    f"{method} {route} {model or '-'} {status} {seconds * 1000:.2f}ms "
                    f"{request_id}\n")  # fmt: skip
        out: dict[str, Any] = {
            "time": _time(at), "level": "INFO", "logger": "ferroscore.access",
            "message": f"{method} {route} {status}", "request_id": request_id,
            "method": method, "route": route, "status": status,
            "latency_ms": round(seconds * 1000, 3),
        }  # fmt: skip
        for name, value in (("model", model), ("tenant", tenant), ("key_id", key_id)):
            if value is not None:
                out[name] = value
        return orjson.dumps(out).decode() + "\n"
