"""Builds the Robyn application: routes bound to the per-process `Service`, which starts in
Robyn's startup handler (after the fork when several processes serve)."""

from __future__ import annotations

from robyn import Robyn
from robyn.argument_parser import Config

from ferroscore.config import Settings
from ferroscore.lifecycle import on_stop_signal, stop_and_exit
from ferroscore.routes import health, models, score
from ferroscore.service import Service


def create_app(settings: Settings, conninfo: str) -> Robyn:
    """A Robyn app serving the active models of the registry at `conninfo`."""
    config = Config()
    config.processes = settings.processes
    config.workers = settings.workers
    config.log_level = "WARN"
    # Robyn 0.88's generated OpenAPI document is malformed and its /docs needs a CDN.
    config.disable_openapi = True
    app = Robyn(__file__, config=config)
    service = Service(settings, conninfo)

    def start() -> None:
        # In each serving process: after the fork when there are several.
        service.start()
        single = settings.processes == 1
        on_stop_signal(lambda: stop_and_exit(service.stop, run_atexit=single))

    app.startup_handler(start)
    for routes in (score, models, health):
        routes.register(app, service)
    return app
