"""Logs: one JSON object per line (time, level, logger, message, and the request's fields
when there is a request), or plain text when stderr is a terminal; and an access log line
per answered request, refusals included.

The request path only appends a tuple to a deque (`AccessLog.record`); a thread of the
process wakes every `FLUSH_S`, formats what came with orjson and writes it at once, so a
request never waits on formatting or on stderr, and the thread is not woken per request
(waking it per request, through a queue, cost +17.5 µs of server CPU per request in
`make bench`)."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

#: The fields a log record may carry about its request (`extra={...}`).
REQUEST_FIELDS = ("request_id", "method", "route", "status", "latency_ms", "model", "tenant",
                  "key_id")  # fmt: skip


#: Terminal colour codes (Robyn colours its own messages); a JSON line carries none.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain(message: str) -> str:
    """`message` without terminal escape sequences."""
    return _ANSI.sub("", message) if "\x1b" in message else message


def _time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": plain(record.getMessage()),
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


def announce(message: str, as_json: bool, **fields: str) -> None:
    """A line for the person who started the service, on stdout, whatever the log level:
    `message` as it is, or, when the logs are JSON lines, a JSON line of the same shape as
    the log's (logger `ferroscore`) with `fields` beside the message."""
    if not as_json:
        print(message, flush=True)
        return
    line = {"time": _time(time.time()), "level": "INFO", "logger": "ferroscore",
            "message": message, **fields}  # fmt: skip
    print(orjson.dumps(line).decode(), flush=True)


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


#: Seconds between two writes of the access log.
FLUSH_S = 0.05

#: (time, method, route, status, seconds, request id, model, tenant, key id)
Access = tuple[float, str, str, int, float, str, str | None, str | None, str | None]


class AccessLog:
    """The access log of one process: `record` on the request path, the writing on a thread."""

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self._as_json = as_json
        self._stream = stream or sys.stderr
        self._pending: deque[Access] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self.started = False
        # The formatted second of the last line, reused while the second lasts.
        self._second = (-1, "")

    def start(self) -> None:
        self._thread.start()
        self.started = True

    def stop(self, timeout: float = 2.0) -> None:
        """Writes what is pending and ends the thread."""
        if self.started:
            self._stop.set()
            self._thread.join(timeout)

    def record(self, entry: Access) -> None:
        # deque.append is atomic: no lock, no wake-up.
        self._pending.append(entry)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self._write()
        self._write()

    def _write(self) -> None:
        pending, lines = self._pending, []
        while pending:
            lines.append(self._line(pending.popleft()))
        if lines:
            self._stream.write("".join(lines))
            self._stream.flush()

    def _time(self, at: float) -> str:
        second = int(at)
        if second != self._second[0]:
            self._second = (
                second,
                datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            )
        return f"{self._second[1]}.{int((at - second) * 1000):03d}+00:00"

    def _line(self, e: Access) -> str:
        at, method, route, status, seconds, request_id, model, tenant, key_id = e
        if not self._as_json:
            return (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))} ACCESS "
                    f"{method} {route} {model or '-'} {status} {seconds * 1000:.2f}ms "
                    f"{request_id}\n")  # fmt: skip
        out: dict[str, Any] = {
            "time": self._time(at), "level": "INFO", "logger": "ferroscore.access",
            "message": f"{method} {route} {status}", "request_id": request_id,
            "method": method, "route": route, "status": status,
            "latency_ms": round(seconds * 1000, 3),
        }  # fmt: skip
        for name, value in (("model", model), ("tenant", tenant), ("key_id", key_id)):
            if value is not None:
                out[name] = value
        return orjson.dumps(out).decode() + "\n"
