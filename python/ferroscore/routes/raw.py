"""Hot routes registered without Robyn's Python wrapper. Robyn 0.88's wrapper converts every
part of the request to Python (headers, query, form data, files, ...) on every call, whatever
the handler reads; its one-parameter shortcut compares a parameter's name with the Request
class, so it never applies. Skipping it gave +20% requests/s on a two-field handler here (wrk,
one core). The handler gets Robyn's Request and must return a Response."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

from robyn import Request, Response, Robyn

log = logging.getLogger(__name__)

Handler = Callable[[Request], Response]


def add_raw_post_route(app: Robyn, path: str, handler: Handler) -> None:
    """Registers `handler` for POST `path`; falls back to Robyn's decorator if its internals
    are not the ones this was written against (robyn 0.88)."""
    try:
        from robyn.robyn import FunctionInfo, HttpMethod
        from robyn.router import Route

        params = dict(inspect.signature(handler).parameters)
        function = FunctionInfo(handler, False, len(params), params, {})
        # robyn.pyi types the HttpMethod members as str.
        method: HttpMethod = HttpMethod.POST  # type: ignore[assignment]
        route = Route(method, path, function, False, False, handler.__name__, [])
        app.router.routes.append(route)
    except (ImportError, AttributeError, TypeError):
        log.warning("Robyn's route internals changed; %s goes through its wrapper", path)
        app.post(path)(handler)
