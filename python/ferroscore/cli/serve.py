"""`ferroscore serve` and `ferroscore migrate`: settings from the environment, the database
(embedded unless DATABASE_URL is set), migrations, the demo model, then the Robyn adapter."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from importlib import resources

from psycopg_pool import ConnectionPool

from ferroscore import hooks
from ferroscore.access.devkey import ensure_dev_key
from ferroscore.config import Settings
from ferroscore.migrations import migrate
from ferroscore.models.registry import DEMO_MODEL, ModelRegistry
from ferroscore.observability.logs import announce, json_lines
from ferroscore.processes.embedded import start_embedded_postgres
from ferroscore.processes.lifecycle import block_stop_signals
from ferroscore.serving.service import Service

log = logging.getLogger("ferroscore")


def database_url(settings: Settings) -> str:
    """DATABASE_URL when given, else the embedded server's."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


def port_is_free(host: str, port: int) -> bool:
    """Robyn binds with SO_REUSEPORT, so a leftover server would silently share the port;
    binding without it first tells us whether anyone listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def serve(settings: Settings) -> int:
    # Before any thread exists, so that every thread inherits the blocked mask.
    block_stop_signals()
    # A hooks module is found where the command runs, as an app module is by uvicorn.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        declared = hooks.load(settings.hooks)
    except hooks.HookError as e:
        log.error("%s", e)
        return 2
    if declared.module:
        names = [h.name for h in (*declared.decide.values(), *declared.routes)]
        log.info("hooks from %s: %s", declared.module, ", ".join(names) or "none declared")
    if settings.exposed_without_front():
        log.warning(
            "serving on %s without the front: Robyn 0.88 alone cannot refuse hostile HTTP (a "
            "malformed chunked body aborts a serving process; smuggled requests, oversized "
            "bodies and headers reach it). Put nginx from deploy/nginx before it (make "
            "serve-prod, docker-compose.yml, deploy/k8s), then set FERROSCORE_FRONT=true",
            settings.host,
        )
    if not port_is_free(settings.host, settings.port):
        log.error("port %s:%d is already in use; set FERROSCORE_PORT", settings.host, settings.port)
        return 2
    conninfo = database_url(settings)
    applied = migrate(settings.session_url(conninfo))
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    with ConnectionPool(conninfo, min_size=1, max_size=1, open=True,
                        **settings.pool_options()) as pool:  # fmt: skip
        registry = ModelRegistry(pool, Service(settings, conninfo).build_endpoint)
        if registry.ensure_demo():
            log.info("registered the demo model %r", DEMO_MODEL)

    from ferroscore.serving.adapters.robyn import supervisor  # imports Robyn, which reads sys.argv

    auth = ""
    if settings.auth and not settings.database_url:
        token = ensure_dev_key(conninfo, settings.data_dir)
        auth = f"-H 'Authorization: Bearer {token}' "
        log.info("development key in %s", settings.data_dir / "dev-key")
    example = resources.files("ferroscore.demo").joinpath("example.json")
    url = f"http://{settings.host}:{settings.port}"
    curl = (f"curl -s -X POST {url}/v1/models/{DEMO_MODEL}/score {auth}"
            f"-H 'content-type: application/json' -d @{example}")  # fmt: skip
    as_json = json_lines(settings.log_format)
    announce(f"ferroscore serving on {url}", as_json, url=url)
    announce(f"try: {curl}", as_json, curl=curl)
    return supervisor(settings, conninfo).run()


def migrate_only(settings: Settings) -> int:
    applied = migrate(settings.session_url(database_url(settings)))
    print("applied: " + (", ".join(applied) or "nothing, the schema is current"))
    return 0
