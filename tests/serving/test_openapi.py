"""The OpenAPI document is the route table: every route once, with its parameters, summary
and responses, valid OpenAPI 3.1, served by its own route."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from ferroscore import Endpoint, Model
from ferroscore.pipeline import Call
from ferroscore.serving import app, openapi

from support import stub_service


def test_every_route_is_in_the_document_once(demo_model_bytes: bytes, demo_schema: str) -> None:
    demo = Endpoint("demo", 3, Model.load(demo_model_bytes), demo_schema)
    service = stub_service({"demo": demo})
    table = app.routes(service)
    doc = openapi.document(table, service.catalog.of("default"))
    validate(doc)
    operations = [(m.upper(), p) for p, item in doc["paths"].items() for m in item]
    assert sorted(operations) == sorted((r.method, r.path) for r in table)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    score = doc["paths"]["/v1/models/{name}/score"]["post"]
    assert score["summary"] == "Score one record, a batch or NDJSON"
    assert score["responses"]["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    assert "V2Error" in infer["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    # Each served model's request is a component, its real input schema inside.
    body = score["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"anyOf": [{"$ref": "#/components/schemas/ScoreRequest_demo"}]}
    features = doc["components"]["schemas"]["Features_demo"]
    assert features["properties"]["mean_radius"]["minimum"] == 0
    assert "version 3" in features["description"]
    assert any(p["name"] == "Idempotency-Key" for p in score["parameters"])
    version = doc["paths"]["/v1/models/{name}/versions/{version}"]["get"]["parameters"]
    assert [(p["name"], p["schema"]["type"]) for p in version] == [
        ("name", "string"), ("version", "integer")]  # fmt: skip
    [served] = [r for r in table if r.path == "/openapi.json"]
    # Authentication is on: a caller without a key sees the routes, but no tenant's models.
    reply = served.handler(Call("GET", "/openapi.json", {}, {}, {}, b""))
    anonymous = json.loads(reply.body)
    assert reply.status == 200
    assert not any(s.startswith("ScoreRequest_") for s in anonymous["components"]["schemas"])
    assert anonymous["paths"] == openapi.document(table)["paths"]
