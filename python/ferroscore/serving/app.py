"""The route table and the pipeline, composed once: every route the service answers, as data
(method, path, handler, scope, summary, responses). The adapter registers it with Robyn; the
OpenAPI document, scope checks and metrics labels read the same table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ferroscore.access.auth import Guard
from ferroscore.pipeline import Handler, Route
from ferroscore.serving import idempotency, openapi
from ferroscore.serving.routes import (
    decisions,
    docs,
    extensions,
    health,
    models,
    monitoring,
    score,
    v2,
    versions,
)
from ferroscore.serving.service import Service

MODEL = "/v1/models/{name}"
VERSION = MODEL + "/versions/{version}"
V2_MODEL = "/v2/models/{name}"

#: The request bodies the document describes (the score route's comes from the models).
_JSON_PART = {"contentType": "application/json"}
PUSH_FORM = {
    "schema": {
        "type": "object", "required": ["model", "schema"], "additionalProperties": False,
        "properties": {
            "model": {"type": "string", "format": "binary", "description": "the artifact"},
            "schema": {"type": "object", "description": "the input schema"},
            "thresholds": {"type": "array", "description": "the thresholds, highest first"},
            "metadata": {"type": "object", "description": "kept with the version"},
            "profile": {"type": "object", "description": "the reference profile"},
            "labels": {"type": "array", "minItems": 1, "uniqueItems": True,
                       "items": {"type": "string", "minLength": 1},
                       "description": "the class labels, one per class (two for a model of"
                                      " one probability): answers name them"},
            "force": {"type": "string", "enum": ["true", "false", "1", "0"],
                      "description": "a new version even when one has this artifact, schema"
                                     " and thresholds"},
        },
    },
    "encoding": {name: _JSON_PART
                 for name in ("schema", "thresholds", "metadata", "profile", "labels")},
}  # fmt: skip
SHADOW = {
    "type": "object", "required": ["version", "share"], "additionalProperties": False,
    "properties": {"version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                   "share": {"type": "number", "minimum": 0, "maximum": 1}},
}  # fmt: skip
_TENSOR = {
    "type": "object", "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"enum": ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
                              "UINT32", "UINT64", "FP16", "FP32", "FP64", "BYTES"]},
        "data": {"type": "array"},
        "parameters": {"type": "object"},
    },
}  # fmt: skip
V2_INFER = {
    "type": "object", "required": ["inputs"],
    "description": "one [rows, features] tensor, or one tensor per feature; the model's "
                   "inputs are in GET /v2/models/{name}",
    "properties": {"id": {"type": "string"},
                   "inputs": {"type": "array", "items": _TENSOR, "minItems": 1},
                   "outputs": {"type": "array", "items": {"type": "object"}},
                   "parameters": {"type": "object"}},
}  # fmt: skip


def routes(service: Service) -> list[Route]:
    """The route table of a service."""
    s = service
    r = Route
    scorer = score.score(s)
    table = [
        r("POST", MODEL + "/score", scorer, "Score one record, a batch or NDJSON",
          scope="score", hot=True,
          responses={200: "scores", 400: "malformed", 404: "no such model", 413: "too large",
                     422: "invalid records",
                     503: "the decision could not be recorded (spool full): not answered"}),
        r("GET", "/v1/models", models.list_models(s), "The served models"),
        r("GET", "/v1/registry", versions.registry(s),
          "Every registered model with its active, shadow and latest versions"),
        r("GET", MODEL, models.get_model(s), "One served model with its input schema"),
        r("POST", MODEL + "/versions", versions.push(s), "Register a new version (multipart)",
          scope="admin", request={"multipart/form-data": PUSH_FORM},
          responses={201: "registered",
                     200: "a version with this artifact, schema and thresholds exists: that"
                          " one (`existing`), unless `force`",
                     400: "bad name or form", 413: "artifact too large",
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
          "Score a challenger version on a share of requests", scope="admin",
          request={"application/json": {"schema": SHADOW}},
          responses={200: "the served state", 400: "not JSON", 404: "no such model or version",
                     409: "no active version, or the version is the champion",
                     422: "not a version and a share"}),
        r("DELETE", MODEL + "/shadow", versions.delete_shadow(s), "Stop the shadow",
          scope="admin"),
        r("GET", MODEL + "/audit", versions.audit(s), "Every change to a model, oldest first"),
        r("GET", MODEL + "/monitoring", monitoring.get(s),
          "Drift of each feature and of the score against the registered profile, and AUC, "
          "log-loss and calibration where outcomes arrived, over a window of the log",
          query=monitoring.QUERY,
          responses={200: "the report", 400: "a query parameter it cannot take"}),
        r("GET", "/v1/decisions", decisions.list_page(s),
          "The caller's decisions, newest first, a page at a time", query=decisions.LIST_QUERY,
          responses={200: "a page of rows and the cursor of the next (null on the last)",
                     400: "a query parameter it cannot take"}),
        r("GET", "/v1/decisions/{request_id}", decisions.get(s),
          "A request's decisions, by the request_id its answer carried",
          responses={200: "its rows: champion, then shadow, in the order of its records",
                     404: "no decision with this request_id in the caller's tenant (yet: "
                          "decisions are written within FERROSCORE_DECISION_FLUSH_MS)"}),
        r("POST", "/v1/decisions/{request_id}/outcome", decisions.post_outcome(s),
          "Record what a decided request turned out to be (its ground truth)", scope="score",
          request={"application/json": {"schema": decisions.OUTCOME}},
          responses={201: "recorded", 200: "the same outcome, recorded before",
                     400: "not JSON", 404: "no decision with this request_id",
                     409: "another outcome was recorded", 422: "not a label, amount and time"}),
        r("GET", "/health/live", health.live, "The process answers", scope="public"),
        r("GET", "/health/ready", health.ready(s), "Models loaded and the database answers",
          scope="public"),
        *v2_routes(s, scorer),
        *extensions.routes(s),
    ]  # fmt: skip
    # Whatever changes something may be retried safely with an Idempotency-Key.
    once = idempotency.Keys(s)
    table = [replace(t, handler=once(t.handler), idempotent=True) if t.method != "GET" else t
             for t in table]  # fmt: skip
    table += [
        *([r("GET", "/metrics", s.metrics.handler(s.settings.operator_tenant),
             "Prometheus metrics, added up over every serving process", scope="metrics",
             responses={200: "the Prometheus text format"})] if s.settings.metrics else []),
        r("GET", "/openapi.json", openapi.serve(table, s.catalog.of, guard(s).identify),
          "This API's OpenAPI 3.1 document", scope="public"),
        r("GET", "/docs", docs.page, "The interactive API reference (Swagger UI)",
          scope="public", responses={200: "an HTML page"}),
        r("GET", "/docs/{asset}", docs.assets(), "The reference's scripts and styles",
          scope="public", responses={200: "the file", 404: "no such asset"}),
    ]  # fmt: skip
    return table


def v2_routes(s: Service, scorer: Handler) -> list[Route]:
    """The Open Inference Protocol (KServe V2): each model route also with `/versions/{v}`."""
    r = Route
    model, version = V2_MODEL, V2_MODEL + "/versions/{version}"
    infer = v2.infer(s, scorer)
    errors = {400: "refused", 404: "no such model or version"}
    table = [
        r("GET", "/v2", v2.server_metadata, "V2: server metadata", scope="public"),
        r("GET", "/v2/health/live", v2.live, "V2: the server is live", scope="public"),
        r("GET", "/v2/health/ready", v2.ready(s), "V2: the server is ready", scope="public",
          responses={200: "ready", 503: "not ready"}),
    ]  # fmt: skip
    for path in (model, version):
        table += [
            r("GET", path, v2.model_metadata(s), "V2: model metadata",
              responses={200: "inputs and outputs", **errors}),
            r("GET", path + "/ready", v2.model_ready(s), "V2: the model is ready",
              responses={200: "ready", **errors}),
            r("GET", path + "/config", v2.model_config(s),
              "V2: Triton's model configuration (for perf_analyzer)",
              responses={200: "configuration", **errors}),
            r("POST", path + "/infer", infer, "V2: score input tensors", scope="score",
              hot=True, request={"application/json": {"schema": V2_INFER}},
              responses={200: "output tensors", **errors, 413: "too large"}),
        ]  # fmt: skip
    return table


def guard(s: Service) -> Guard:
    return Guard(s.settings.auth, s.keys, s.jwt, s.rate_limits)


def handlers(table: Sequence[Route], service: Service) -> list[tuple[Route, Handler]]:
    """Each route with its pipeline: authentication, scope and rate limit (`Guard`) first,
    then, on the routes that change something, idempotency (in the table), then the
    handler."""
    checks = guard(service)
    return [(r, checks(r, r.handler)) for r in table]
