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
from typing import Any

import orjson
import pytest

from ferroscore.models.registry import DEMO_MODEL

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


def test_every_answer_the_front_makes_is_json(front: FrontProcess, no_deaths: None) -> None:
    """A NUL in the path is nginx's own 500 (it will not pass it on); the front's own
    liveness answers without the service."""
    raw = _raw(front.port, _post("/v1/models/breast%00cancer/score",
                                 {**front.headers, "Content-Length": "2", "Connection": "close"},
                                 b"{}"))  # fmt: skip
    assert _statuses(raw)[0] >= 400, raw[:300]
    assert _problem(raw)["code"]
    assert front.request("GET", "/health/front") == (200, {"status": "live"})


HOOKS = """
import os, time
from ferroscore.hooks import route

@route("POST", "/v1/ext/slow", budget_ms=20_000)
def slow(call, ctx):
    with open(os.environ["SLOW_RAN"], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(4)
    return {"ran": True}

@route("POST", "/v1/ext/wait", budget_ms=20_000)
def wait(call, ctx):
    time.sleep(0.02)
    return {"waited": True}
"""


@pytest.fixture(scope="module")
def hooked_front(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FrontProcess, Path]]:
    """The front before two serving processes with routes that take their time: `slow`
    notes the process that runs it in the file returned beside the server."""
    tmp = tmp_path_factory.mktemp("hooked-front")
    (tmp / "slow_hooks.py").write_text(HOOKS)
    ran = tmp / "ran"
    env = {"DATABASE_URL": module_database, "FERROSCORE_PROCESSES": "2",
           "FERROSCORE_DATA_DIR": str(tmp), "FERROSCORE_HOOKS": "slow_hooks",
           "PYTHONPATH": str(tmp), "SLOW_RAN": str(ran),
           "FERROSCORE_ACCESS_LOG": "false"}  # fmt: skip
    server = FrontProcess(env, tmp / "front.log")
    try:
        server.wait_ready()
        yield server, ran
    finally:
        assert server.stop() == 0, server.log()


def _request(path: str, headers: dict[str, str]) -> bytes:
    head = "".join(
        f"{k}: {v}\r\n"
        for k, v in {
            "Host": "x",
            **headers,
            "Content-Type": "application/json",
            "Content-Length": "2",
        }.items()
    )
    return f"POST {path} HTTP/1.1\r\n{head}\r\n{{}}".encode()  # fmt: skip


async def _answer(reader: Any) -> int:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def _many_clients(port: int, busy: int, idle: int, headers: dict[str, str]) -> list[int]:
    """`idle` keep-alive clients answered once and left open; then `busy` clients on
    connections of their own with a request in flight all at once (each holding a connection
    of the front to the service too); then the idle ones ask again on their connection.
    Returns every client's last status (0: no answer)."""
    import asyncio

    async def client(path: str, twice: asyncio.Event | None) -> int:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(path, headers))
            status = await asyncio.wait_for(_answer(reader), 120)
            if twice is not None:
                await twice.wait()
                writer.write(_request(path, headers))
                status = await asyncio.wait_for(_answer(reader), 120)
            writer.close()
            return status
        except (OSError, TimeoutError, asyncio.IncompleteReadError, IndexError, ValueError):
            return 0

    again = asyncio.Event()
    idlers = [asyncio.ensure_future(client("/v1/ext/wait", again)) for _ in range(idle)]
    await asyncio.sleep(2)
    busy_done = await asyncio.gather(*(client("/v1/ext/wait", None) for _ in range(busy)))
    again.set()
    return [*busy_done, *await asyncio.gather(*idlers)]


def test_2000_keep_alive_clients_are_all_answered(
    hooked_front: tuple[FrontProcess, Path],
) -> None:
    """2,000 clients in flight at once hold 4,000 of the front's connections; 200 more idle
    keep-alive clients must keep theirs (nginx short of connections closes idle ones)."""
    import asyncio
    import resource

    front, _ = hooked_front
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    statuses = asyncio.run(_many_clients(front.port, 2000, 200, front.headers))
    assert statuses.count(200) == 2200, {s: statuses.count(s) for s in set(statuses)}
    assert "worker_connections are not enough" not in front.log()


def test_a_post_that_may_have_run_is_never_sent_again(
    hooked_front: tuple[FrontProcess, Path],
) -> None:
    """A serving process killed while it runs a POST that reached it over a kept-alive
    connection: the caller gets a 503 to retry, and the front does not run the request again
    on the other process."""
    import os
    import signal as signals
    import urllib.error
    import urllib.request

    front, ran = hooked_front
    # Kept-alive connections from the front to both processes, as under any load.
    for _ in range(20):
        assert front.request("GET", "/health/ready")[0] == 200
    outcome: dict[str, object] = {}

    def post() -> None:
        request = urllib.request.Request(f"{front.url}/v1/ext/slow", b"{}", front.headers,
                                         method="POST")  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                outcome["status"] = r.status
        except urllib.error.HTTPError as e:
            outcome["status"] = e.code

    caller = threading.Thread(target=post)
    caller.start()
    deadline = time.monotonic() + 10
    while not ran.exists() or not ran.read_text().strip():
        assert time.monotonic() < deadline, front.log()[-3000:]
        time.sleep(0.02)
    os.kill(int(ran.read_text().split()[0]), signals.SIGKILL)
    caller.join(30)
    time.sleep(1)  # a replay would have started on the other process by now
    assert outcome.get("status") == 503, outcome
    assert len(ran.read_text().split()) == 1, front.log()[-3000:]


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
