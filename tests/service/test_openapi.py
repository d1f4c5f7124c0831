"""The OpenAPI document is the route table: every route once, with its parameters, summary
and responses, valid OpenAPI 3.1, served by its own route."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from ferroscore import app, openapi
from ferroscore.pipeline import Call

from support import stub_service


def test_every_route_is_in_the_document_once() -> None:
    table = app.routes(stub_service({}))
    doc = openapi.document(table)
    validate(doc)
    operations = [(m.upper(), p) for p, item in doc["paths"].items() for m in item]
    assert sorted(operations) == sorted((r.method, r.path) for r in table)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    score = doc["paths"]["/v1/models/{name}/score"]["post"]
    assert score["summary"] == "Score one record, a batch or NDJSON"
    assert score["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    version = doc["paths"]["/v1/models/{name}/versions/{version}"]["get"]["parameters"]
    assert [(p["name"], p["schema"]["type"]) for p in version] == [
        ("name", "string"), ("version", "integer")]  # fmt: skip
    [served] = [r for r in table if r.path == "/openapi.json"]
    reply = served.handler(Call("GET", "/openapi.json", {}, {}, {}, b""))
    assert (reply.status, json.loads(reply.body)) == (200, doc)
