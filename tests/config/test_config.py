"""Settings refuse bad values at start-up, naming the variable."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jwt
import pytest

from ferroscore import ModelLoadError, PayloadTooLargeError, SchemaError
from ferroscore.access.auth import ANONYMOUS
from ferroscore.access.jwts import Verifier
from ferroscore.config import SETTINGS, ConfigError, Settings, markdown_table
from ferroscore.models.registry import Artifact
from ferroscore.observability.logs import AccessLog, configure
from ferroscore.pipeline import Call, Caller, Reply
from ferroscore.serving import app, idempotency
from ferroscore.serving.adapters.robyn import create_app, supervisor
from ferroscore.serving.routes import versions
from ferroscore.serving.service import Service


def test_defaults_bind_to_loopback() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.database_url, s.data_dir) == (
        "127.0.0.1",
        8000,
        None,
        Path(".ferroscore"),
    )


def test_values_are_read() -> None:
    s = Settings.from_env(
        {
            "FERROSCORE_PORT": "9001",
            "FERROSCORE_PROCESSES": "2",
            "DATABASE_URL": "postgresql://u@h/db",
            "FERROSCORE_LOG_LEVEL": "debug",
        }
    )
    assert (s.port, s.processes, s.database_url, s.log_level) == (
        9001,
        2,
        "postgresql://u@h/db",
        "DEBUG",
    )


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"FERROSCORE_PORT": "eighty"}, "FERROSCORE_PORT"),
        ({"FERROSCORE_PORT": "70000"}, "FERROSCORE_PORT"),
        ({"FERROSCORE_PROCESSES": "0"}, "FERROSCORE_PROCESSES"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "host=/tmp port"}, "DATABASE_URL"),
        ({"FERROSCORE_LOG_LEVEL": "loud"}, "FERROSCORE_LOG_LEVEL"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.from_env(env)


def test_the_docs_table_is_the_declaration() -> None:
    # The configuration page is generated when the site is built (scripts/docs_hooks.py);
    # tests/docs/test_site.py finds every setting on the built page.
    root = Path(__file__).parents[2]
    page = (root / "docs" / "configuration.md").read_text()
    assert "<!-- settings -->" in page
    sys.path.insert(0, str(root / "scripts"))
    try:
        from docs_hooks import on_page_markdown
    finally:
        sys.path.pop(0)
    assert markdown_table() in on_page_markdown(page)


def _service(env: dict[str, str], database_url: str) -> Service:
    return Service(Settings.from_env({"DATABASE_URL": database_url, **env}), database_url)


def _refused_by_limit(service: Service, body: bytes, code: str) -> bool:
    demo = resources.files("ferroscore.demo")
    endpoint = service.build_endpoint(
        Artifact("default", "d", 1, None, demo.joinpath("model.json").read_bytes(),
                 demo.joinpath("schema.json").read_text(), None)
    )  # fmt: skip
    try:
        endpoint.score(body)
    except PayloadTooLargeError as e:
        return e.errors[0]["code"] == code
    return False


def _started(env: dict[str, str], database_url: str) -> Service:
    service = _service(env, database_url)
    service.start()
    service.stop()
    return service


def _flusher_threads(service: Service) -> int:
    return len(service.decisions.flusher_threads)


def _spooled_in(service: Service) -> Path | None:
    spool = service.decisions.spool
    return None if spool is None else Path(spool.directory).parent


def _push_refused(env: dict[str, str], database_url: str) -> bool:
    service = _service(env, database_url)
    call = Call("POST", "/", {"name": "m"}, {}, {"content-length": "2048"}, b"", caller=ANONYMOUS)
    return versions.push(service)(call).status == 413


def _lightgbm(max_feature_idx: int = 1, per_iteration: int = 1, trees: str = "") -> bytes:
    return (f"tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration={per_iteration}\n"
            f"max_feature_idx={max_feature_idx}\nobjective=binary sigmoid:1\n\n{trees}"
            "end of trees\n").encode()  # fmt: skip


def _chain(depth: int, categorical: bool = False) -> str:
    """A LightGBM tree of `depth` splits on feature 0, each sending its left side to a leaf;
    categorical: each split tests a bitset of 40 words (categories up to 1279)."""
    left = " ".join(str(-(i + 1)) for i in range(depth))
    right = " ".join([*(str(i + 1) for i in range(depth - 1)), str(-(depth + 1))])
    cat = (f"num_cat=1\ncat_boundaries=0 40\ncat_threshold={' '.join(['1'] * 40)}\n"
           if categorical else "")  # fmt: skip
    return (f"Tree=0\nnum_leaves={depth + 1}\nsplit_feature={' '.join(['0'] * depth)}\n"
            f"threshold={' '.join(['0'] * depth)}\n"
            f"decision_type={' '.join(['1' if categorical else '2'] * depth)}\n"
            f"left_child={left}\nright_child={right}\n"
            f"leaf_value={' '.join(['0.1'] * (depth + 1))}\n"
            f"{cat}shrinkage=1\n\n")  # fmt: skip


def _model_refused(artifact: bytes, limit: str) -> Callable[[dict[str, str], str], bool]:
    """The service's in-process load refuses `artifact` past the `limit` the setting sets,
    and the defaults take it."""

    def observe(env: dict[str, str], database_url: str) -> bool:
        def refused_by(settings_env: dict[str, str]) -> str | None:
            service = _service(settings_env, database_url)
            try:
                service.build_endpoint(Artifact("default", "m", 1, None, artifact, "{}", None))
            except ModelLoadError as e:
                return getattr(e, "limit", None)
            except SchemaError:
                return None
            return None

        return refused_by(env) == limit and refused_by({}) is None

    return observe


def _upload_memory(env: dict[str, str], database_url: str) -> bool:
    """An upload that needs more memory than its child may take is refused; the child died,
    the test process did not."""
    raised = {"FERROSCORE_MODEL_MAX_FEATURES": str(1 << 24),
              "FERROSCORE_MODEL_MAX_MEMORY_MB": str(1 << 20), **env}  # fmt: skip
    service = _service(raised, database_url)
    artifact = Artifact("default", "m", 1, None, _lightgbm(max_feature_idx=(1 << 24) - 1), "{}",
                        None)  # fmt: skip
    try:
        service.check_upload(artifact)
    except ModelLoadError as e:  # the child's MemoryError, or its death on a failed allocation
        return "FERROSCORE_UPLOAD_MEMORY_MB" in str(e)
    return False


def _operator_only(env: dict[str, str], database_url: str) -> bool:
    handler = _service(env, database_url).metrics.handler(Settings.from_env(env).operator_tenant)
    caller = Caller("k", "default", frozenset({"metrics"}))
    return handler(Call("GET", "/metrics", {}, {}, {}, b"", caller=caller)).status == 403


def _idempotency_ttl(env: dict[str, str], database_url: str) -> bool:
    """A kept response expires after the configured seconds."""
    service = _service(env, database_url)
    service.start()
    try:
        key = uuid.uuid4().hex
        handler = idempotency.Keys(service)(lambda call: Reply(200, b"{}"))
        handler(Call("POST", "/t", {}, {}, {"idempotency-key": key}, b"{}", caller=ANONYMOUS))
        with service.pool.connection() as conn:
            lifetime = "SELECT extract(epoch FROM expires_at - created_at) FROM idempotency_keys"
            row = conn.execute(lifetime + " WHERE key = %s", (key,)).fetchone()
    finally:
        service.stop()
    return row is not None and abs(float(row[0]) - 7) < 1


def _keyless_listing(env: dict[str, str], database_url: str) -> bool:
    """A request without a key is answered (authentication off), not refused with 401."""
    service = _service(env, database_url)
    [(_, handler)] = [(r, h) for r, h in app.handlers(app.routes(service), service)
                      if (r.method, r.path) == ("GET", "/v1/models")]  # fmt: skip
    return handler(Call("GET", "/v1/models", {}, {}, {}, b"")).status == 200


def _drift_min_rows(env: dict[str, str], database_url: str) -> bool:
    """Monitoring says insufficient_data below the setting's rows, and names it."""
    service = _service({**env, "FERROSCORE_AUTH": "false"}, database_url)
    service.start()
    try:
        demo = resources.files("ferroscore.demo")
        service.registry.register("drift-rows", demo.joinpath("model.json").read_bytes(),
                                  demo.joinpath("schema.json").read_text())  # fmt: skip
        [(_, handler)] = [(r, h) for r, h in app.handlers(app.routes(service), service)
                          if r.path == "/v1/models/{name}/monitoring"]  # fmt: skip
        call = Call("GET", "/v1/models/drift-rows/monitoring", {"name": "drift-rows"},
                    {"version": "1"}, {}, b"")  # fmt: skip
        window = json.loads(handler(call).body)["window"]
    finally:
        service.stop()
    return window["min_rows"] == 7 and window["status"] == "insufficient_data"


_SECRET = "a-test-secret-of-at-least-32-bytes!"
_SECRET_FILE = Path(tempfile.gettempdir()) / f"ferroscore-jwt-{os.getpid()}.secret"
_JWKS_FILE = Path(tempfile.gettempdir()) / f"ferroscore-jwks-{os.getpid()}.json"
_SPOOL_DIR = Path(tempfile.gettempdir()) / f"ferroscore-spool-{os.getpid()}"


def _jwt_tenant(env: dict[str, str], claims: dict[str, Any], base: bool = True) -> str:
    """The tenant a JWT signed with the test secret gets; raises when it is refused."""
    _SECRET_FILE.write_text(_SECRET)
    key = base64.urlsafe_b64encode(_SECRET.encode()).rstrip(b"=").decode()
    _JWKS_FILE.write_text(json.dumps({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256",
                                                "k": key}]}))  # fmt: skip
    start = {"FERROSCORE_JWT_KEY_FILE": str(_SECRET_FILE)} if base else {}
    verifier = Verifier(Settings.from_env({**start, **env}))
    payload = {"sub": "svc", "tenant": "acme", "exp": int(time.time()) + 60, **claims}
    token = jwt.encode(payload, _SECRET, algorithm="HS256", headers={"kid": "k1"})
    return verifier.verify(token).tenant


def _jwt_refused(env: dict[str, str], claims: dict[str, Any]) -> bool:
    try:
        _jwt_tenant(env, claims)
    except jwt.InvalidTokenError:
        return True
    return False


def _logged_as_json(env: dict[str, str]) -> bool:
    """Under pytest stderr is no terminal, so AUTO means JSON too: observe a text stream that
    says it is a terminal."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    settings = Settings.from_env(env)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        as_json = configure(settings.log_level, settings.log_format, stream)
        logging.getLogger("ferroscore.test").warning("hello")
    finally:
        root.handlers[:], root.level = handlers, level
    return as_json and json.loads(stream.getvalue())["message"] == "hello"


def _endpoint_closures(env: dict[str, str], url: str) -> list[object]:
    """What the Robyn endpoints of an app hold, and the functions they hold hold: its access
    log, when there is one."""
    app = create_app(Service(Settings.from_env({"DATABASE_URL": url, **env}), url))
    found: list[object] = []
    todo = [route.function.handler for route in app.router.routes]
    seen: set[int] = set()
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        for cell in getattr(fn, "__closure__", None) or ():
            found.append(cell.cell_contents)
            if callable(cell.cell_contents):
                todo.append(cell.cell_contents)
    return found


FEATURES = {"features": {f"f{i}": 1 for i in range(40)}}

# How each documented variable shows its effect: (env, observation that must hold).
OBSERVED: dict[str, tuple[dict[str, str], Callable[[dict[str, str], str], bool]]] = {
    "DATABASE_URL": ({}, lambda env, url: _started(env, url).pool is not None),
    # Also through a real PgBouncer in tests/deploy/test_pgbouncer.py.
    "FERROSCORE_DIRECT_URL": ({"FERROSCORE_DIRECT_URL": "host=/nowhere"},
        lambda env, url: _service({**env, "DATABASE_URL": url}, url).catalog._listener._conninfo
        == "host=/nowhere" and _service({**env, "DATABASE_URL": url}, url).pool.kwargs
        == {"prepare_threshold": None}),
    "FERROSCORE_DATA_DIR": ({"FERROSCORE_DATA_DIR": "/tmp/x"},
        lambda env, url: Settings.from_env(env).data_dir == Path("/tmp/x")),
    "FERROSCORE_HOST": ({"FERROSCORE_HOST": "127.0.0.2"},
        lambda env, url: Settings.from_env(env).host == "127.0.0.2"),
    "FERROSCORE_FRONT": ({"FERROSCORE_FRONT": "true"},
        lambda env, url: not Settings.from_env({**env, "FERROSCORE_HOST": "0.0.0.0"})
        .exposed_without_front()
        and Settings.from_env({"FERROSCORE_HOST": "0.0.0.0"}).exposed_without_front()),
    "FERROSCORE_PORT": ({"FERROSCORE_PORT": "9"},
        lambda env, url: Settings.from_env(env).port == 9),
    "FERROSCORE_PROCESSES": ({"FERROSCORE_PROCESSES": "3"},
        lambda env, url: len(supervisor(Settings.from_env(env), url).slots) == 3),
    "FERROSCORE_WORKERS": ({"FERROSCORE_WORKERS": "2"},
        lambda env, url: create_app(Service(Settings.from_env(env), url)).config.workers == 2),
    # Each also acts on the real processes in tests/processes/test_supervisor.py.
    "FERROSCORE_GRACE_S": ({"FERROSCORE_GRACE_S": "7"},
        lambda env, url: supervisor(Settings.from_env(env), url).grace_s == 7),
    "FERROSCORE_DRAIN_DELAY_S": ({"FERROSCORE_DRAIN_DELAY_S": "3"},
        lambda env, url: Settings.from_env(env).drain_delay_s == 3),
    "FERROSCORE_HEALTH_TIMEOUT_S": ({"FERROSCORE_HEALTH_TIMEOUT_S": "7"},
        lambda env, url: supervisor(Settings.from_env(env), url).health_timeout_s == 7),
    "FERROSCORE_START_TIMEOUT_S": ({"FERROSCORE_START_TIMEOUT_S": "7"},
        lambda env, url: supervisor(Settings.from_env(env), url).start_timeout_s == 7),
    "FERROSCORE_MAX_BODY_BYTES": ({"FERROSCORE_MAX_BODY_BYTES": "100"},
        lambda env, url: _refused_by_limit(_service(env, url), b" " * 101, "too_large")),
    "FERROSCORE_MAX_DEPTH": ({"FERROSCORE_MAX_DEPTH": "3"},
        lambda env, url: _refused_by_limit(_service(env, url),
                                           b'{"features": {"a": [[[1]]]}}', "too_deep")),
    "FERROSCORE_MAX_STRING_BYTES": ({"FERROSCORE_MAX_STRING_BYTES": "16"},
        lambda env, url: _refused_by_limit(_service(env, url),
                                           b'{"features": {"' + b"k" * 17 + b'": 1}}',
                                           "string_too_long")),
    "FERROSCORE_MAX_FEATURES": ({"FERROSCORE_MAX_FEATURES": "31"},
        lambda env, url: _refused_by_limit(_service(env, url), json.dumps(FEATURES).encode(),
                                           "too_many_features")),
    "FERROSCORE_MAX_ROWS": ({"FERROSCORE_MAX_ROWS": "2"},
        lambda env, url: _refused_by_limit(_service(env, url),
                                           b'{"rows": [{}, {}, {}]}', "too_many_rows")),
    "FERROSCORE_MAX_ARTIFACT_BYTES": ({"FERROSCORE_MAX_ARTIFACT_BYTES": "1024"}, _push_refused),
    "FERROSCORE_MODEL_MAX_FEATURES": ({"FERROSCORE_MODEL_MAX_FEATURES": "2"},
        _model_refused(_lightgbm(max_feature_idx=2), "features")),
    "FERROSCORE_MODEL_MAX_OUTPUTS": ({"FERROSCORE_MODEL_MAX_OUTPUTS": "2"},
        _model_refused(_lightgbm(per_iteration=3), "outputs")),
    "FERROSCORE_MODEL_MAX_TREES": ({"FERROSCORE_MODEL_MAX_TREES": "1"},
        _model_refused(_lightgbm(trees=_chain(1) * 2), "trees")),
    "FERROSCORE_MODEL_MAX_NODES": ({"FERROSCORE_MODEL_MAX_NODES": "4"},
        _model_refused(_lightgbm(trees=_chain(2)), "nodes")),
    "FERROSCORE_MODEL_MAX_DEPTH": ({"FERROSCORE_MODEL_MAX_DEPTH": "2"},
        _model_refused(_lightgbm(trees=_chain(3)), "depth")),
    "FERROSCORE_MODEL_MAX_CATEGORIES": ({"FERROSCORE_MODEL_MAX_CATEGORIES": "100"},
        _model_refused(_lightgbm(trees=_chain(1, categorical=True)), "categories")),
    "FERROSCORE_MODEL_MAX_MEMORY_MB": ({"FERROSCORE_MODEL_MAX_MEMORY_MB": "1"},
        _model_refused(_lightgbm(trees=_chain(1) * 20_000), "memory_bytes")),
    "FERROSCORE_UPLOAD_MEMORY_MB": ({"FERROSCORE_UPLOAD_MEMORY_MB": "256"}, _upload_memory),
    "FERROSCORE_UPLOAD_CPU_S": ({"FERROSCORE_UPLOAD_CPU_S": "7"},
        lambda env, url: Settings.from_env(env).upload_cpu_s == 7),
    "FERROSCORE_OPERATOR_TENANT": ({"FERROSCORE_OPERATOR_TENANT": "ops"}, _operator_only),
    "FERROSCORE_CATALOG_RECONCILE_S": ({"FERROSCORE_CATALOG_RECONCILE_S": "7"},
        lambda env, url: _started(env, url).catalog.reconcile_s == 7),
    "FERROSCORE_DECISION_LOG": ({"FERROSCORE_DECISION_LOG": "off"},
        lambda env, url: _started(env, url).decisions.spool is None),
    "FERROSCORE_SPOOL_DIR": ({"FERROSCORE_SPOOL_DIR": str(_SPOOL_DIR)},
        lambda env, url: _spooled_in(_started(env, url)) == _SPOOL_DIR),
    "FERROSCORE_SPOOL_MAX_MB": ({"FERROSCORE_SPOOL_MAX_MB": "3"},
        lambda env, url: _started(env, url).decisions.max_bytes == 3 << 20),
    "FERROSCORE_DECISION_FLUSH_MS": ({"FERROSCORE_DECISION_FLUSH_MS": "30"},
        lambda env, url: _started(env, url).decisions.flush_interval_s == 0.03),
    "FERROSCORE_DECISION_FLUSHERS": ({"FERROSCORE_DECISION_FLUSHERS": "3"},
        lambda env, url: _flusher_threads(_started(env, url)) == 3),
    "FERROSCORE_COMMIT_WINDOW_US": ({"FERROSCORE_COMMIT_WINDOW_US": "700"},
        lambda env, url: _started(env, url).decisions.commit_window_us == 700),
    "FERROSCORE_DECISION_RETENTION_DAYS": ({"FERROSCORE_DECISION_RETENTION_DAYS": "9"},
        lambda env, url: _started(env, url).decisions.retention_days == 9),
    "FERROSCORE_DRIFT_MIN_ROWS": ({"FERROSCORE_DRIFT_MIN_ROWS": "7"}, _drift_min_rows),
    "FERROSCORE_DB_POOL_SIZE": ({"FERROSCORE_DB_POOL_SIZE": "3"},
        lambda env, url: _started(env, url).pool.max_size
        == 3 + Settings.from_env(env).decision_flushers),
    "FERROSCORE_LOG_LEVEL": ({"FERROSCORE_LOG_LEVEL": "debug"},
        lambda env, url: Settings.from_env(env).log_level == "DEBUG"),
    # Any importable module is a hooks module, with or without hooks.
    "FERROSCORE_IDEMPOTENCY_TTL_S": ({"FERROSCORE_IDEMPOTENCY_TTL_S": "7"}, _idempotency_ttl),
    "FERROSCORE_HOOKS": ({"FERROSCORE_HOOKS": "json"},
        lambda env, url: _service(env, url).hooks.module == "json"),
    "FERROSCORE_HOOK_BUDGET_MS": ({"FERROSCORE_HOOK_BUDGET_MS": "7"},
        lambda env, url: _service(env, url).hook_runner.budget_ms == 7),
    "FERROSCORE_LOG_FORMAT": ({"FERROSCORE_LOG_FORMAT": "json"},
        lambda env, url: _logged_as_json(env)),
    "FERROSCORE_ACCESS_LOG": ({"FERROSCORE_ACCESS_LOG": "false"},
        lambda env, url: not any(isinstance(e, AccessLog) for e in _endpoint_closures(env, url))),
    "FERROSCORE_METRICS": ({"FERROSCORE_METRICS": "false"},
        lambda env, url: "/metrics" not in {r.path for r in app.routes(_service(env, url))}),
    "FERROSCORE_AUTH": ({"FERROSCORE_AUTH": "false"}, _keyless_listing),
    "FERROSCORE_JWT_KEY_FILE": ({"FERROSCORE_JWT_KEY_FILE": str(_SECRET_FILE)},
        lambda env, url: _jwt_tenant(env, {}, base=False) == "acme"),
    "FERROSCORE_JWT_JWKS_FILE": ({"FERROSCORE_JWT_JWKS_FILE": str(_JWKS_FILE)},
        lambda env, url: _jwt_tenant(env, {}, base=False) == "acme"),
    "FERROSCORE_JWT_AUDIENCE": ({"FERROSCORE_JWT_AUDIENCE": "mine"},
        lambda env, url: _jwt_refused(env, {"aud": "other"})),
    "FERROSCORE_JWT_ISSUER": ({"FERROSCORE_JWT_ISSUER": "mine"},
        lambda env, url: _jwt_refused(env, {"iss": "other"})),
    "FERROSCORE_JWT_TENANT_CLAIM": ({"FERROSCORE_JWT_TENANT_CLAIM": "org"},
        lambda env, url: _jwt_tenant(env, {"tenant": None, "org": "globex"}) == "globex"),
}  # fmt: skip


def test_every_setting_has_an_observed_effect() -> None:
    assert sorted(OBSERVED) == sorted(s.env for s in SETTINGS)


@pytest.mark.parametrize("variable", sorted(OBSERVED))
def test_setting_takes_effect(variable: str, database_url: str) -> None:
    env, observe = OBSERVED[variable]
    assert observe(env, database_url)
    # And the default does not show the effect, so the observation can fail.
    if env:
        assert not _default_also_passes(observe, database_url)


def _default_also_passes(observe: Callable[[dict[str, str], str], bool], url: str) -> bool:
    try:
        return observe({}, url)
    except Exception:
        return False


def test_one_worker_thread_whatever_the_decision_log() -> None:
    # A durable answer waits for the disk on the event loop, not on a thread.
    assert Settings.from_env({}).worker_threads() == 1
    assert Settings.from_env({"FERROSCORE_DECISION_LOG": "buffered"}).worker_threads() == 1
    assert Settings.from_env({"FERROSCORE_WORKERS": "4"}).worker_threads() == 4


@pytest.mark.parametrize(
    ("host", "exposed"),
    [("127.0.0.1", False), ("127.0.0.2", False), ("::1", False), ("localhost", False),
     ("0.0.0.0", True), ("::", True), ("10.1.2.3", True), ("ferroscore.internal", True)],
)  # fmt: skip
def test_serving_beyond_loopback_without_the_front_is_said(host: str, exposed: bool) -> None:
    assert Settings.from_env({"FERROSCORE_HOST": host}).exposed_without_front() is exposed
