"""Handlers and middleware as plain functions of a `Call`, with no server: the pipeline's
composition, the strict form decoder, and the score and push handlers' refusals."""

from __future__ import annotations

import json
from importlib import resources
from types import MappingProxyType
from typing import Any

import pytest

from ferroscore import Endpoint, Model
from ferroscore.access.auth import ANONYMOUS
from ferroscore.config import Settings
from ferroscore.models.catalog import Served
from ferroscore.pipeline import Call, Handler, Reply, compose, json_reply
from ferroscore.serving.forms import FormError, name_files, parse_form
from ferroscore.serving.routes import score, versions
from ferroscore.serving.service import Service

from support import multipart

DEMO = resources.files("ferroscore.demo")


def call(body: bytes | str = b"", headers: dict[str, str] | None = None,
         query: dict[str, str] | None = None, **params: str) -> Call:  # fmt: skip
    return Call("POST", "/", params, query or {}, headers or {}, body, caller=ANONYMOUS)


def test_middleware_runs_outermost_first() -> None:
    seen: list[str] = []

    def named(name: str) -> Any:
        def middleware(c: Call, next_: Handler) -> Reply:
            seen.append(name)
            return next_(c)

        return middleware

    handler = compose(lambda c: json_reply(200, seen), [named("a"), named("b")])
    assert json.loads(handler(call()).body) == ["a", "b"]


def test_forms_are_decoded_strictly() -> None:
    body, content_type = multipart({"model": b"\x00\x01binary"}, {"schema": "{}"})
    assert parse_form(content_type, body) == {"model": b"\x00\x01binary", "schema": b"{}"}
    renamed = content_type.replace("multipart/form-data", "multipart/x-ferroscore-form")
    assert parse_form(renamed, body)["schema"] == b"{}"
    refusals = [
        ("application/json", body, "expected multipart/form-data"),
        ("multipart/form-data", body, "no boundary"),
        (content_type, body[:-8], "ends before its closing boundary"),
        (content_type, body[: len(body) // 2], "ends before its closing boundary"),
        (content_type, body.replace(b'name="schema"', b"x"), "no name"),
    ]
    for media, data, message in refusals:
        with pytest.raises(FormError, match=message):
            parse_form(media, data)


@pytest.fixture
def service() -> Service:
    """A service that is never started: the handlers are given a catalog and a log."""
    svc = Service(Settings.from_env({}), "host=/nonexistent")
    endpoint = Endpoint("demo", 4, Model.load(DEMO.joinpath("model.json").read_bytes()),
                        DEMO.joinpath("schema.json").read_text())  # fmt: skip
    snapshot = MappingProxyType({"default": {"demo": Served(endpoint)}})
    recorded: list[Any] = []

    class Catalog:
        def current(self) -> Any:
            return snapshot

        def of(self, tenant: str) -> Any:
            return snapshot.get(tenant, {})

    class Log:
        def record(self, decision: Any, role: str, tenant: str) -> None:
            recorded.append((decision.request_id, role))

    svc.catalog = Catalog()  # type: ignore[assignment]
    svc.decisions = Log()  # type: ignore[assignment]
    svc.recorded = recorded  # type: ignore[attr-defined]
    return svc


def test_the_score_handler_without_a_server(service: Service) -> None:
    handle = score.score(service)
    body = DEMO.joinpath("example.json").read_bytes()
    reply = handle(call(body, name="demo"))
    answer = json.loads(reply.body)
    assert (reply.status, answer["version"]) == (200, 4)
    assert service.recorded == [(answer["request_id"], "champion")]  # type: ignore[attr-defined]
    refusals = [
        (call(body, name="nope"), 404, "model_not_found"),
        (call(b"{", name="demo"), 400, "malformed_json"),
        (call(b'{"features": {}}', name="demo"), 422, "validation_failed"),
        (call(body, query={"partial": "maybe"}, name="demo"), 400, "invalid_query"),
        (call(b"{}\n", {"content-type": "application/x-ndjson"}, name="demo"), 422,
         "validation_failed"),
    ]  # fmt: skip
    for c, status, code in refusals:
        reply = handle(c)
        assert (reply.status, json.loads(reply.body)["code"]) == (status, code)


def test_the_push_handler_refuses_before_storing(service: Service) -> None:
    handle = versions.push(service)
    body, content_type = multipart({"model": b"x"}, {"schema": "{}"})
    cut = handle(call(body[:-8], {"content-type": content_type}, name="m"))
    assert (cut.status, json.loads(cut.body)["code"]) == (400, "malformed_form")
    bad_name = handle(call(body, {"content-type": content_type}, name="../etc"))
    assert (bad_name.status, json.loads(bad_name.body)["code"]) == (400, "invalid_name")


def test_files_are_named_by_the_document_they_are() -> None:
    model, schema = b"tree\nversion=v4\n", b'{"type": "object", "properties": {}}'
    profile = b'{"rows": 1, "features": {}, "score": {}}'
    named = name_files({"metadata": b"{}"}, (schema, model, b"[]", profile))
    assert named == {"metadata": b"{}", "model": model, "schema": schema, "thresholds": b"[]",
                     "profile": profile}  # fmt: skip
    xgboost = b'{"learner": {"properties": 1}}'
    assert name_files({}, (xgboost,)) == {"model": xgboost}
    with pytest.raises(FormError, match="two parts of the form are a 'schema'"):
        name_files({"schema": schema}, (schema,))
