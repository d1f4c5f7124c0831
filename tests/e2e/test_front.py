"""The production front (`make serve-prod`: nginx from deploy/nginx before the supervised
service) against requests that take Robyn down or past us when they reach it directly:
malformed chunked bodies, request smuggling, a 30 MB body, 64 KiB headers, slowloris. Each
gets its status from nginx, as JSON, and no serving process dies. The same malformed chunked
body straight at the service kills a serving process, and the supervisor brings it back."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ferroscore.registry import DEMO_MODEL

from support import FrontProcess, ServerProcess, children

pytestmark = pytest.mark.e2e

SCORE = f"/v1/models/{DEMO_MODEL}/score"
TIMEOUT_S = 2  # the front's header and body timeouts, short for the test
DEATHS = re.compile(r"serving process \d+ \(slot \d\) (was killed by \w+|exited with status \d+)")


@pytest.fixture(scope="module")
def front(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontProcess]:
    tmp = tmp_path_factory.mktemp("front")
    env = {"DATABASE_URL": module_database, "FERROSCORE_PROCESSES": "2",
           "FERROSCORE_DATA_DIR": str(tmp), "FERROSCORE_FRONT_TIMEOUT_S": str(TIMEOUT_S),
           "FERROSCORE_ACCESS_LOG": "false"}  # fmt: skip
    server = FrontProcess(env, tmp / "front.log")
    try:
        server.wait_ready()
        yield server
    finally:
        assert server.stop() == 0, server.log()


@pytest.fixture
def no_deaths(front: FrontProcess) -> Iterator[None]:
    """The test must leave every serving process alive."""
    serving = _children(front)
    yield
    assert not DEATHS.search(front.log()), front.log()[-3000:]
    assert _children(front) == serving


def _children(server: ServerProcess) -> list[int]:
    """The supervisor's serving processes (the front's child `ferroscore serve` is the
    supervisor; nginx is the other child)."""
    for child in children(server.proc.pid):
        if "ferroscore" in Path(f"/proc/{child}/cmdline").read_text():
            return children(child)
    raise AssertionError("no supervisor under the front")


def _raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Sends `data` as is and reads until the server closes or `timeout`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def _statuses(raw: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"^HTTP/1\.1 (\d{3})", raw, re.M)]


def _problem(raw: bytes) -> dict[str, object]:
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert b"content-type: application/problem+json" in raw.lower(), raw[:400]
    return orjson.loads(body)  # type: ignore[no-any-return]


def _post(path: str, headers: dict[str, str], rest: bytes) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "x", **headers}.items())
    return f"POST {path} HTTP/1.1\r\n{lines}".encode() + b"\r\n" + rest


CHUNKED = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
#: Malformed chunked bodies; each made the serving process abort or hang when sent straight.
MALFORMED_CHUNKED = {
    "bad hex size": (b"zz\r\n{}\r\n0\r\n\r\n", {400}),
    "bad chunk end": (b"2\r\n{}XX3\r\n{}\n\r\n0\r\n\r\n", {400}),
    "64-bit size": (b"FFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n", {400, 413}),
    # nginx logs a 408 and closes the connection without an answer, as it does for any
    # client that stops sending.
    "no terminator": (b'15\r\n{"features": {"x": 1}\r\n', set()),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_CHUNKED))
def test_malformed_chunked_bodies_are_answered_by_the_front(
    front: FrontProcess, no_deaths: None, case: str
) -> None:
    body, expected = MALFORMED_CHUNKED[case]
    started = time.monotonic()
    raw = _raw(front.port, _post(SCORE, {**CHUNKED, **front.headers}, body))
    assert time.monotonic() - started < TIMEOUT_S + 3
    if not expected:
        assert raw == b""
        return
    assert _statuses(raw)[:1], raw[:300]
    assert _statuses(raw)[0] in expected, raw[:300]
    assert _problem(raw)["status"] == _statuses(raw)[0]


def test_a_well_formed_chunked_body_is_scored(front: FrontProcess, no_deaths: None) -> None:
    record = orjson.dumps({"features": {}})
    body = f"{len(record):x}\r\n".encode() + record + b"\r\n0\r\n\r\n"
    raw = _raw(front.port, _post(SCORE, {**CHUNKED, **front.headers, "Connection": "close"}, body))
    # It reaches the service whole (a 422 for the missing features is the service's own).
    assert _statuses(raw) == [422], raw[:300]
    assert _problem(raw)["code"] == "validation_failed"


def test_content_length_with_transfer_encoding_is_refused(
    front: FrontProcess, no_deaths: None
) -> None:
    smuggled = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    headers = {**CHUNKED, **front.headers, "Content-Length": "5"}
    raw = _raw(front.port, _post(SCORE, headers, b"0\r\n\r\n" + smuggled))
    # One answer, a 400: the request hidden in the body is never answered.
    assert _statuses(raw) == [400], raw


def test_a_30_mb_body_is_refused_before_it_is_read(front: FrontProcess, no_deaths: None) -> None:
    rss = [_rss(pid) for pid in _children(front)]
    size = 30 << 20
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as s:
        started = time.monotonic()
        s.sendall(_post(SCORE, {**front.headers, "Content-Length": str(size)}, b""))
        head = s.recv(65536)
        answered = time.monotonic() - started
        # Sending the body anyway changes nothing: nginx has answered and closes.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(b"x" * size)
    assert _statuses(head) == [413], head
    assert answered < 1.0
    assert _problem(head)["code"] == "too_large"
    grown = [_rss(pid) - before for pid, before in zip(_children(front), rss, strict=True)]
    assert max(grown) < 8 << 20, grown


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def test_a_64_kib_header_is_refused(front: FrontProcess, no_deaths: None) -> None:
    raw = _raw(front.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536
               + b"\r\n\r\n")  # fmt: skip
    assert _statuses(raw) == [431], raw[:300]
    assert _problem(raw)["code"] == "headers_too_large"


def test_request_ids_are_set_by_the_front_when_absent(front: FrontProcess) -> None:
    given = _raw(front.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc-123\r\n"
                 b"Connection: close\r\n\r\n")  # fmt: skip
    assert b"\r\nx-request-id: abc-123\r\n" in given.lower()
    made = _raw(front.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert re.search(rb"\r\nx-request-id: [0-9a-f]{32}\r\n", made.lower()), made


def test_slowloris_does_not_starve_a_normal_client(front: FrontProcess, no_deaths: None) -> None:
    trickling: list[socket.socket] = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", front.port))
        s.sendall(f"POST {SCORE} HTTP/1.1\r\nHost: x\r\n".encode())
        trickling.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for s in trickling:
                with contextlib.suppress(OSError):  # closed by the front: what it is for
                    s.sendall(b"X-Slow: 1\r\n")

    thread = threading.Thread(target=trickle)
    thread.start()
    latencies, statuses = [], []
    try:
        deadline = time.monotonic() + TIMEOUT_S + 2
        while time.monotonic() < deadline:
            started = time.monotonic()
            status, _ = front.request("POST", SCORE, (Path(__file__).parents[2] / "python" /
                                      "ferroscore" / "demo" / "example.json").read_bytes(),
                                      {"content-type": "application/json"})  # fmt: skip
            latencies.append(time.monotonic() - started)
            statuses.append(status)
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    # The trickling connections were closed by the front's header timeout.
    closed = sum(1 for s in trickling if _closed(s))
    for s in trickling:
        s.close()
    assert set(statuses) == {200}, statuses
    assert len(statuses) > 50
    assert max(latencies) < 1.0, max(latencies)
    assert closed == len(trickling), closed
    print(f"\nslowloris: 300 trickling connections; a normal client scored {len(statuses)} times, "
          f"slowest {max(latencies) * 1000:.1f} ms")  # fmt: skip


def _closed(s: socket.socket) -> bool:
    s.settimeout(2)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_a_malformed_multipart_push_gets_a_json_answer(front: FrontProcess) -> None:
    # Robyn answers this with a text/plain 500 when it reaches it under its own name.
    body = b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nxx'
    headers = {**front.headers, "Content-Type": "multipart/form-data; boundary=b",
               "Content-Length": str(len(body)), "Connection": "close"}  # fmt: skip
    raw = _raw(front.port, _post(f"/v1/models/{DEMO_MODEL}/versions", headers, body))
    assert _statuses(raw)[0] in (400, 422), raw[:300]
    assert _problem(raw)["code"]


def test_malformed_chunked_straight_at_the_service_is_survived(front: FrontProcess) -> None:
    """Without the front, a bad chunk size aborts a serving process (Robyn #1425); the
    supervisor starts another, and the service answers throughout."""
    victims = _children(front)
    _raw(front.service_port, _post(SCORE, CHUNKED, b"zz\r\n{}\r\n0\r\n\r\n"), timeout=5)
    deadline = time.monotonic() + 5
    while not re.search(r"is serving, ([\d.]+) s after its predecessor died", front.log()):
        assert time.monotonic() < deadline, front.log()[-3000:]
        time.sleep(0.02)
    back = float(re.findall(r"is serving, ([\d.]+) s after", front.log())[-1])
    assert back < 1.0
    assert re.search(r"was killed by SIGABRT", front.log())
    assert len(set(_children(front)) - set(victims)) == 1
    assert front.request("GET", "/health/ready")[0] == 200
    print(f"\nmalformed chunked body straight at the service: a serving process aborted, "
          f"its successor served {back:.2f} s later")  # fmt: skip
