"""examples/hooks/card_rules.py, the README's hooks, around the card-fraud model of "Serve
your own model": the enrichment computes the account's age from the date callers send, the
overlay declines large amounts and refuses blocked merchants, the route is in the table."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from ferroscore import Endpoint, Model
from ferroscore.access.auth import ANONYMOUS
from ferroscore.models.inference import Options, infer_schema, read_table
from ferroscore.pipeline import Call
from ferroscore.serving.routes import extensions, score
from ferroscore.serving.service import Service

from support import stub_service

EXAMPLES = Path(__file__).parents[2] / "examples"
THRESHOLDS = [{"min": 0.5, "decision": "decline"}, {"decision": "approve"}]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    out = tmp_path_factory.mktemp("card")
    subprocess.run([sys.executable, EXAMPLES / "serve-your-own" / "train.py", "--rows", "4000",
                    "--out", out], check=True, capture_output=True)  # fmt: skip
    model = Model.load(out / "model.txt")
    # No bounds: the tests send amounts the training data never reached.
    data = read_table(out / "train.parquet")
    schema = infer_schema(model, data, Options(margin=None), artifact=model.artifact)
    age = schema["properties"]["account_age_days"]
    age.update({"type": ["integer", "null"], "x-ferroscore-source": "enrichment"})
    schema["required"].remove("account_age_days")
    schema["additionalProperties"] = True
    endpoint = Endpoint("card-fraud", 1, model, json.dumps(schema),
                        thresholds=json.dumps(THRESHOLDS))  # fmt: skip
    sys.path.insert(0, str(EXAMPLES / "hooks"))
    try:
        yield stub_service({"card-fraud": endpoint}, {"FERROSCORE_HOOKS": "card_rules"})
    finally:
        sys.path.remove(str(EXAMPLES / "hooks"))


def post(service: Service, features: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"features": features})
    reply = score.score(service)(
        Call("POST", "/", {"name": "card-fraud"}, {}, {}, body, caller=ANONYMOUS)
    )
    return reply.status, json.loads(reply.body)


def logged_features(service: Service) -> dict[str, Any]:
    [*_, decision] = service.decisions.recorded  # type: ignore[attr-defined]
    [(_, features, _, _)] = decision.rows()
    return json.loads(features)  # type: ignore[no-any-return]


TRANSACTION = {"amount": 420.0, "merchant": "online", "card_present": False}


def test_the_account_age_comes_from_the_date_callers_send(service: Service) -> None:
    opened = (date.today() - timedelta(days=12)).isoformat()
    status, answer = post(service, {**TRANSACTION, "account_opened": opened})
    assert status == 200, answer
    assert logged_features(service)["account_age_days"] == 12
    assert answer["extensions"] == {"rules": "card-rules v1"}
    # Without a date the feature is missing, as the schema allows.
    status, _ = post(service, TRANSACTION)
    assert status == 200
    assert logged_features(service)["account_age_days"] is None
    status, refused = post(service, {**TRANSACTION, "account_opened": "last tuesday"})
    assert (status, refused["code"]) == (422, "invalid_date")


def test_large_amounts_are_declined_whatever_the_score(service: Service) -> None:
    status, answer = post(service, {**TRANSACTION, "amount": 9000.0, "card_present": True,
                                    "account_opened": "2015-01-01"})  # fmt: skip
    assert status == 200, answer
    assert answer["decision"] == "decline"
    assert answer["reasons"] == ["R12: amount over 5,000"]


def test_blocked_merchants_are_refused(service: Service) -> None:
    status, answer = post(service, {**TRANSACTION, "merchant": "weapons"})
    # An unknown category scores as missing; the overlay refuses it by name.
    assert (status, answer["code"]) == (403, "merchant_blocked")


def test_the_partner_route_is_in_the_table(service: Service) -> None:
    [route] = extensions.routes(service)
    assert (route.method, route.path) == ("GET", "/v1/ext/card-fraud/declines")
    assert (
        route.summary == "Declines of the card-fraud model in the last hour, from the decision log."
    )
    # Never started, the service has no database: the hook says so with its own 409.
    reply = route.handler(Call("GET", route.path, {}, {}, {}, b"", caller=ANONYMOUS))
    assert (reply.status, json.loads(reply.body)["code"]) == (409, "unavailable")
