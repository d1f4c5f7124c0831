"""API keys, scopes, tenants, JWTs, revocation and rate limits against a real server of two
serving processes: every route of the table tried without a key, with a key lacking its
scope, and with another tenant's key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ferroscore.models.registry import DEMO_MODEL

from support import ServerProcess, create_key, serving

pytestmark = pytest.mark.e2e

EXAMPLE = (Path(__file__).parents[2] / "python/ferroscore/demo/example.json").read_bytes()
PUBLIC = {"/health/live", "/health/ready", "/v2", "/v2/health/live", "/v2/health/ready",
          "/openapi.json", "/docs", "/docs/{asset}"}  # fmt: skip


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def server(
    module_database: str, signing_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("auth")
    public = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / "jwt.pem").write_bytes(public)
    env = {"DATABASE_URL": module_database, "FERROSCORE_PROCESSES": "2",
           "FERROSCORE_JWT_KEY_FILE": str(directory / "jwt.pem"),
           "FERROSCORE_JWT_AUDIENCE": "ferroscore", "FERROSCORE_DATA_DIR": str(directory),
           "FERROSCORE_DECISION_FLUSH_MS": "20"}  # fmt: skip
    with serving(env, directory / "server.log") as srv:
        yield srv


def send(
    server: ServerProcess, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:  # fmt: skip
    """One request on a connection of its own (so the kernel spreads them over both
    processes), with exactly `headers` as credentials."""
    request = urllib.request.Request(server.url + path, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            status, got, raw = r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        status, got, raw = e.code, dict(e.headers.items()), e.read()
    lower = {k.lower(): v for k, v in got.items()}
    return status, lower, json.loads(raw) if raw and raw[:1] in b"{[" else {}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def routes(server: ServerProcess) -> list[tuple[str, str, str]]:
    """Every route of the document as (method, concrete path, scope-ish tag), the path
    parameters filled with the demo model and its version."""
    _, _, doc = send(server, "GET", "/openapi.json")
    found = []
    for template, item in doc["paths"].items():
        for method in item:
            path = template.replace("{name}", DEMO_MODEL).replace("{version}", "1")
            path = path.replace("{asset}", "swagger-ui.css")
            found.append((method.upper(), path, template))
    return found


def test_every_route_but_the_public_ones_needs_a_key(server: ServerProcess) -> None:
    checked = 0
    for method, path, template in routes(server):
        status, headers, problem = send(server, method, path, b"{}")
        if template in PUBLIC:
            assert status not in (401, 403), (method, path)
            continue
        assert status == 401, (method, path, status, problem)
        assert problem["code"] == "unauthenticated"
        assert headers["www-authenticate"].startswith("Bearer realm=")
        checked += 1
    assert checked >= 20
    for token in ("fsk_000000000000_" + "a" * 40, "nonsense", ""):
        status, headers, problem = send(server, "GET", "/v1/models", None, bearer(token))
        assert (status, problem["code"]) == (401, "invalid_token"), token
        assert 'error="invalid_token"' in headers["www-authenticate"]


def test_a_key_by_either_header_and_its_scopes(server: ServerProcess, module_database: str) -> None:
    assert server.key is not None
    assert send(server, "GET", "/v1/models", None, {"x-api-key": server.key})[0] == 200
    scorer = create_key(module_database, scopes=("score",))
    reader = create_key(module_database, scopes=("read",))
    admin = create_key(module_database, scopes=("admin",))
    score_path = f"/v1/models/{DEMO_MODEL}/score"
    assert send(server, "POST", score_path, EXAMPLE, bearer(scorer))[0] == 200
    status, headers, problem = send(server, "GET", "/v1/models", None, bearer(scorer))
    assert (status, problem["code"]) == (403, "insufficient_scope")
    assert 'scope="read"' in headers["www-authenticate"]
    assert send(server, "POST", score_path, EXAMPLE, bearer(reader))[0] == 403
    assert send(server, "GET", f"/v1/models/{DEMO_MODEL}", None, bearer(reader))[0] == 200
    assert send(server, "POST", f"/v1/models/{DEMO_MODEL}/rollback", b"", bearer(reader))[0] == 403
    # admin implies read, not score.
    assert send(server, "GET", "/v1/registry", None, bearer(admin))[0] == 200
    assert send(server, "POST", score_path, EXAMPLE, bearer(admin))[0] == 403
    status, _, problem = send(server, "POST", f"/v1/models/{DEMO_MODEL}/rollback", b"",
                              bearer(admin))  # fmt: skip
    assert (status, problem["code"]) == (409, "no_previous_version")


def test_an_expired_key_is_refused(server: ServerProcess, module_database: str) -> None:
    from datetime import timedelta

    token = create_key(module_database, expires_in=timedelta(seconds=2))
    assert send(server, "GET", "/v1/models", None, bearer(token))[0] == 200
    time.sleep(2.2)
    assert send(server, "GET", "/v1/models", None, bearer(token))[0] == 401


def test_another_tenants_models_are_not_there(
    server: ServerProcess, module_database: str, demo_model_bytes: bytes, demo_schema: str
) -> None:
    other = bearer(create_key(module_database, tenant="globex"))
    checked = 0
    for method, path, template in routes(server):
        if "{name}" not in template:
            continue
        body = EXAMPLE if path.endswith("/score") else b"{}"
        status, _, answer = send(server, method, path, body, other)
        # Exactly what a model that exists nowhere gets: nothing tells globex it exists.
        nowhere = path.replace(DEMO_MODEL, "no-such-model")
        status_nowhere, _, answer_nowhere = send(server, method, nowhere, body, other)
        assert 400 <= status < 500, (method, path, status, answer)
        assert (status, answer.get("code")) == (status_nowhere, answer_nowhere.get("code"))
        checked += status == 404
    assert checked >= 15
    _, _, listed = send(server, "GET", "/v1/models", None, other)
    assert listed == {"models": []}
    _, _, doc = send(server, "GET", "/openapi.json", None, other)
    assert not any(k.startswith("ScoreRequest_") for k in doc["components"]["schemas"])
    # globex's own model of the same name is its own, numbered from 1.
    status, pushed = server.upload(f"/v1/models/{DEMO_MODEL}/versions", {"model": demo_model_bytes},
                                   {"schema": demo_schema}, other)  # fmt: skip
    assert (status, pushed["version"]) == (201, 1), pushed
    assert (
        send(server, "POST", f"/v1/models/{DEMO_MODEL}/versions/1/activate", b"", other)[0] == 200
    )
    deadline = time.monotonic() + 10
    while (answer := send(server, "POST", f"/v1/models/{DEMO_MODEL}/score", EXAMPLE, other))[
        0
    ] != 200:
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)
    request_id = answer[2]["request_id"]
    _, _, mine = send(server, "GET", f"/v1/models/{DEMO_MODEL}/versions", None, server.headers)
    assert [v["version"] for v in mine["versions"]] == [1]
    time.sleep(0.3)
    with psycopg.connect(module_database) as conn:
        logged = conn.execute("SELECT tenant FROM decisions WHERE request_id = %s",
                              (request_id,)).fetchall()  # fmt: skip
        audit = conn.execute("SELECT DISTINCT tenant FROM model_audit WHERE action = 'register'"
                             " AND actor <> 'system'").fetchall()  # fmt: skip
    assert logged == [("globex",)]
    assert ("globex",) in audit


def test_jwts_signed_by_the_configured_key(
    server: ServerProcess, signing_key: rsa.RSAPrivateKey
) -> None:
    def token(key: Any = signing_key, **claims: Any) -> dict[str, str]:
        payload = {"sub": "svc-checkout", "tenant": "default", "scope": "score read",
                   "aud": "ferroscore", "exp": int(time.time()) + 60, **claims}  # fmt: skip
        return bearer(jwt.encode(payload, key, algorithm="RS256"))

    score_path = f"/v1/models/{DEMO_MODEL}/score"
    assert send(server, "POST", score_path, EXAMPLE, token())[0] == 200
    assert send(server, "GET", f"/v1/models/{DEMO_MODEL}", None, token())[0] == 200
    assert send(server, "POST", f"/v1/models/{DEMO_MODEL}/rollback", b"", token())[0] == 403
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for refused in (token(stranger), token(exp=int(time.time()) - 5), token(aud="another"),
                    token(tenant=None)):  # fmt: skip
        status, _, problem = send(server, "POST", score_path, EXAMPLE, refused)
        assert (status, problem["code"]) == (401, "invalid_token"), problem
    # Another tenant's JWT sees none of default's models.
    assert send(server, "POST", score_path, EXAMPLE, token(tenant="initech"))[0] == 404
    # Claims of the wrong type refuse the token: none is a 500, none grants a scope.
    for claims in ({"scope": 5}, {"scope": {"admin": 1}}, {"scope": ["read", 1]},
                   {"sub": None}, {"sub": 5}, {"sub": ""},
                   {"sub": "a\x00b"}, {"tenant": "a\x00b"}, {"tenant": "../x"}):  # fmt: skip
        status, _, problem = send(server, "POST", score_path, EXAMPLE, token(**claims))
        assert (status, problem["code"]) == (401, "invalid_token"), (claims, problem)
    no_subject = {"tenant": "default", "scope": "score", "aud": "ferroscore",
                  "exp": int(time.time()) + 60}  # fmt: skip
    anonymous = bearer(jwt.encode(no_subject, signing_key, algorithm="RS256"))
    assert send(server, "POST", score_path, EXAMPLE, anonymous)[0] == 401


def test_jwt_callers_of_two_tenants_never_share_an_idempotency_record(
    server: ServerProcess, signing_key: rsa.RSAPrivateKey
) -> None:
    """The same `sub` and `Idempotency-Key` in two tenants: each gets its own answer."""

    def token(tenant: str) -> dict[str, str]:
        payload = {"sub": "svc-shared", "tenant": tenant, "scope": "score read",
                   "aud": "ferroscore", "exp": int(time.time()) + 60}  # fmt: skip
        return bearer(jwt.encode(payload, signing_key, algorithm="RS256"))

    score_path = f"/v1/models/{DEMO_MODEL}/score"
    again = {"idempotency-key": f"same-{time.time_ns()}"}
    status, _, first = send(server, "POST", score_path, EXAMPLE, {**token("default"), **again})
    assert status == 200, first
    status, _, other = send(server, "POST", score_path, EXAMPLE, {**token("acme"), **again})
    assert (status, other["code"]) == (404, "model_not_found"), other
    status, _, replayed = send(server, "POST", score_path, EXAMPLE, {**token("default"), **again})
    assert (status, replayed["request_id"]) == (200, first["request_id"])


def test_the_cli_makes_lists_and_revokes_keys_and_every_process_drops_a_revoked_one(
    server: ServerProcess, module_database: str
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ferroscore", "keys", *args],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "DATABASE_URL": module_database})  # fmt: skip

    made = cli("create", "--tenant", "default", "--scopes", "read", "--description", "ci")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"fsk_[0-9a-f]{12}_[0-9A-Za-z]{40}", token)
    key_id = token.split("_")[1]
    listed = cli("list", "--json")
    [row] = [k for k in json.loads(listed.stdout) if k["id"] == key_id]
    assert (row["tenant"], row["scopes"], row["revoked_at"]) == ("default", "read", None)
    assert token not in listed.stdout
    # Known to both processes before the revocation.
    for _ in range(20):
        assert send(server, "GET", "/v1/models", None, bearer(token))[0] == 200
    revoked = cli("revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    at = time.monotonic()
    refused_in_a_row = 0
    while refused_in_a_row < 20:
        status = send(server, "GET", "/v1/models", None, bearer(token))[0]
        refused_in_a_row = refused_in_a_row + 1 if status == 401 else 0
        assert time.monotonic() - at < 5, "a revoked key still worked after 5 s"
    took = time.monotonic() - at
    print(f"revocation: refused everywhere {took:.2f} s after `keys revoke`")
    again = cli("revoke", key_id)
    assert again.returncode != 0
    assert "no live key" in again.stderr


def test_the_rate_limit_holds_across_processes(server: ServerProcess, module_database: str) -> None:
    rate, seconds = 40, 10
    headers = bearer(create_key(module_database, scopes=("read",), rate_per_s=float(rate)))
    accepted, refused, seen = [0], [0], {}
    lock = threading.Lock()
    # Twice the rate, from 4 clients on fresh connections: both processes take a share.
    interval = 4 / (2 * rate)
    start = time.monotonic()

    def client(offset: float) -> None:
        n = 0
        while (due := start + offset + n * interval) < start + seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            status, got, _ = send(server, "GET", "/v1/models", None, headers)
            with lock:
                (accepted if status == 200 else refused)[0] += 1
                if status == 429:
                    seen.update(got)
            n += 1

    threads = [threading.Thread(target=client, args=(i * interval / 4,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = rate * seconds
    print(f"rate limit {rate}/s for {seconds} s at twice the rate: {accepted[0]} accepted "
          f"({accepted[0] / expected:.3f} of the limit), {refused[0]} refused")  # fmt: skip
    assert abs(accepted[0] - expected) <= 0.1 * expected
    assert refused[0] >= 0.8 * expected
    assert int(seen["retry-after"]) >= 1
    assert seen["ratelimit-policy"] == f'"key";q={rate};w=1'
    assert re.fullmatch(r'"key";r=0;t=\d+', seen["ratelimit"])


def test_only_the_embedded_database_gets_a_development_key(server: ServerProcess) -> None:
    # This server runs on DATABASE_URL with a data directory: no key was made there.
    assert not list(Path(server.log_path).parent.glob("dev-key"))
    assert "Authorization: Bearer" not in server.log()
