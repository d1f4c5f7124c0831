"""The route table and the pipeline, composed once: every route the service answers, as data
(method, path, handler, scope, summary, responses). The adapter registers it with Robyn; the
OpenAPI document, scope checks and metrics labels read the same table."""

from __future__ import annotations

from collections.abc import Sequence

from ferroscore import openapi
from ferroscore.pipeline import Call, Handler, Middleware, Reply, Route, compose
from ferroscore.routes import extensions, health, models, score, versions
from ferroscore.service import Service

MODEL = "/v1/models/{name}"
VERSION = MODEL + "/versions/{version}"


def routes(service: Service) -> list[Route]:
    """The route table of a service."""
    s = service
    r = Route
    table = [
        r("POST", MODEL + "/score", score.score(s), "Score one record, a batch or NDJSON",
          scope="score", hot=True,
          responses={200: "scores", 400: "malformed", 404: "no such model", 413: "too large",
                     422: "invalid records"}),
        r("GET", "/v1/models", models.list_models(s), "The served models"),
        r("GET", "/v1/registry", versions.registry(s),
          "Every registered model with its active, shadow and latest versions"),
        r("GET", MODEL, models.get_model(s), "One served model with its input schema"),
        r("POST", MODEL + "/versions", versions.push(s), "Register a new version (multipart)",
          scope="admin",
          responses={201: "registered", 400: "bad name or form", 413: "artifact too large",
                     422: "unservable"}),
        r("GET", MODEL + "/versions", versions.list_versions(s), "Every version of a model"),
        r("GET", VERSION, versions.get_version(s), "One version, with its schema and profile"),
        r("POST", VERSION + "/activate", versions.activate(s), "Serve this version",
          scope="admin"),
        r("DELETE", VERSION, versions.delete_version(s), "Delete an inactive version",
          scope="admin", responses={204: "deleted", 404: "no such version", 409: "in use"}),
        r("POST", MODEL + "/rollback", versions.rollback(s),
          "Serve again the version active before", scope="admin"),
        r("PUT", MODEL + "/shadow", versions.put_shadow(s),
          "Score a challenger version on a share of requests", scope="admin"),
        r("DELETE", MODEL + "/shadow", versions.delete_shadow(s), "Stop the shadow",
          scope="admin"),
        r("GET", MODEL + "/audit", versions.audit(s), "Every change to a model, oldest first"),
        r("GET", "/health/live", health.live, "The process answers", scope="public"),
        r("GET", "/health/ready", health.ready(s), "Models loaded and the database answers",
          scope="public"),
        *extensions.routes(s),
    ]  # fmt: skip
    table.append(r("GET", "/openapi.json", openapi.serve(table), "This API's OpenAPI 3.1 document",
                   scope="public"))  # fmt: skip
    return table


def caller(call: Call, next_: Handler) -> Reply:
    """Who is calling, for the audit trail: the API key once keys exist, else the peer."""
    state = call.state = call.state or {}
    state.setdefault("caller", state.get("peer") or "anonymous")
    return next_(call)


#: The middleware every non-hot route runs through, outermost first. The keys, limits and
#: idempotency issues add theirs here.
MIDDLEWARE: Sequence[Middleware] = (caller,)


def handlers(table: Sequence[Route]) -> list[tuple[Route, Handler]]:
    """Each route with its composed pipeline."""
    return [(r, r.handler if r.hot else compose(r.handler, MIDDLEWARE)) for r in table]
