"""Hooks without a server: loading and its refusals, decision hooks over one record and over
batches, `Reject`, time budgets, failures and garbage, async hooks, route hooks. A scored
request's decision is logged whatever its hook did."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferroscore import Endpoint, Model
from ferroscore.access.auth import ANONYMOUS
from ferroscore.hooks import HookError, HookFailed, Outcome, TTLCache, decide, load
from ferroscore.models.catalog import Served
from ferroscore.pipeline import Call
from ferroscore.serving.routes import extensions, score
from ferroscore.serving.service import Service

from support import FraudModels, stub_service

THRESHOLDS = [{"min": 0.5, "decision": "decline"}, {"decision": "approve"}]
RECORD = {"amount": 120.0, "age": 40, "merchant": "travel", "card_present": False}


@pytest.fixture
def hooks_dir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))


def module(directory: Path, source: str) -> str:
    """Writes a hooks module under a fresh name; returns the name."""
    name = f"hooks_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    return name


def service_with(
    fraud: FraudModels, hooks: str | None, budget_ms: int = 250, schema: str | None = None
) -> Service:
    env = {"FERROSCORE_HOOKS": hooks or "", "FERROSCORE_HOOK_BUDGET_MS": str(budget_ms)}
    endpoint = Endpoint("fraud", 3, Model.load(fraud.lightgbm), schema or fraud.schema.read_text(),
                        thresholds=json.dumps(THRESHOLDS))  # fmt: skip
    svc: Service = stub_service({"fraud": endpoint}, env)
    return svc


def post(svc: Service, body: Any) -> tuple[int, dict[str, Any]]:
    handler = score.score(svc)
    reply = handler(
        Call("POST", "/", {"name": "fraud"}, {}, {}, json.dumps(body), caller=ANONYMOUS)
    )
    return reply.status, json.loads(reply.body)


def post_ndjson(svc: Service, records: list[Any]) -> tuple[int, dict[str, Any]]:
    body = "\n".join(json.dumps(r) for r in records) + "\n"
    headers = {"content-type": "application/x-ndjson"}
    query = {"partial": "true"}
    reply = score.score(svc)(
        Call("POST", "/", {"name": "fraud"}, query, headers, body, caller=ANONYMOUS)
    )
    return reply.status, json.loads(reply.body)


def logged(svc: Service) -> list[tuple[int, str, list[float], str | None]]:
    return [row for d in svc.decisions.recorded for row in d.rows()]  # type: ignore[attr-defined]


OVERLAY = """
    from ferroscore.hooks import Context, Outcome, Reject, Scored, decide

    CALLS = []

    @decide("fraud")
    def overlay(scored: Scored, ctx: Context) -> Outcome:
        CALLS.append((len(scored.rows), scored.batch, ctx.request_id, ctx.model, ctx.version))
        if any(row.values["merchant"] == "fuel" for row in scored.rows):
            raise Reject("fuel_blocked", "fuel is not served today", status=403)
        contributions = scored.contributions()
        return Outcome(
            decisions=["decline" if r.values["amount"] > 500 else None for r in scored.rows],
            reasons=[[scored.features[int(c.argmax())]] for c in contributions[:, :-1]],
            extra={"rule": "amount-500", "rows": len(scored.rows)},
        )
"""


def test_a_decision_hook_has_the_final_say_and_the_log_records_it(
    fraud: FraudModels, hooks_dir: Path
) -> None:
    name = module(hooks_dir, OVERLAY)
    svc = service_with(fraud, name)
    status, answer = post(svc, {"features": {**RECORD, "amount": 520.0}})
    assert status == 200
    assert answer["decision"] == "decline"
    assert answer["reasons"][0] in RECORD
    assert answer["extensions"] == {"rule": "amount-500", "rows": 1}
    assert logged(svc)[-1][3] == "decline"
    calls = sys.modules[name].CALLS
    assert calls == [(1, False, answer["request_id"], "fraud", 3)]
    # A row the hook leaves alone keeps the thresholds' decision.
    status, answer = post(svc, {"features": RECORD})
    assert answer["decision"] in ("approve", "decline")
    assert logged(svc)[-1][3] == answer["decision"]


def test_a_batch_calls_the_hook_once_with_every_valid_row(
    fraud: FraudModels, hooks_dir: Path
) -> None:
    name = module(hooks_dir, OVERLAY)
    svc = service_with(fraud, name)
    rows = [{"features": {**RECORD, "amount": a}} for a in (10.0, 520.0)]
    rows.insert(1, {"features": {**RECORD, "amount": -1}})
    status, answer = post(svc, {"rows": rows, "partial": True})
    assert status == 200
    assert [(2, True, answer["request_id"], "fraud", 3)] == sys.modules[name].CALLS
    assert answer["decisions"][1:] == [None, "decline"]
    assert answer["reasons"][1] is None
    assert len(answer["reasons"]) == 3
    assert [r[3] for r in logged(svc)] == [answer["decisions"][0], "decline"]


def test_reject_answers_its_status_and_code_and_the_decision_is_still_logged(
    fraud: FraudModels, hooks_dir: Path
) -> None:
    svc = service_with(fraud, module(hooks_dir, OVERLAY))
    status, answer = post(svc, {"features": {**RECORD, "merchant": "fuel"}})
    assert (status, answer["code"]) == (403, "fuel_blocked")
    assert len(logged(svc)) == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ("raise RuntimeError('boom')", 500, "hook_failed", "raised RuntimeError('boom')"),
        ("return 'approve'", 500, "hook_failed", "returned str, not an Outcome"),
        ("return Outcome(decisions=['a', 'b'])", 500, "hook_failed", "2 decisions for 1 rows"),
        ("return Outcome(decisions=[''])", 500, "hook_failed", "1 to 64 characters"),
        ("return Outcome(extra={'x': object()})", 500, "hook_failed", "JSON cannot hold"),
        ("time.sleep(2)", 503, "hook_timeout", "past its budget of 100 ms"),
    ],
)
def test_a_failing_hook_gets_a_clear_error_naming_it_and_the_decision_is_logged(
    fraud: FraudModels, hooks_dir: Path, body: str, status: int, code: str, says: str
) -> None:
    name = module(hooks_dir, f"""
        import time
        from ferroscore.hooks import Outcome, decide

        @decide("fraud")
        def bad(scored, ctx):
            {body}
    """)  # fmt: skip
    svc = service_with(fraud, name, budget_ms=100)
    got, answer = post(svc, {"features": RECORD})
    assert (got, answer["code"]) == (status, code)
    assert f"{name}.bad" in answer["message"]
    assert says in answer["message"]
    assert len(logged(svc)) == 1
    # Nothing is left broken: the next request gets the same answer, and is logged too.
    assert post(svc, {"features": RECORD})[0] == status
    assert len(logged(svc)) == 2


def test_async_hooks_and_their_own_budgets(fraud: FraudModels, hooks_dir: Path) -> None:
    name = module(hooks_dir, """
        import asyncio
        from ferroscore.hooks import Outcome, decide, route

        @decide("fraud", budget_ms=2000)
        async def slow_but_allowed(scored, ctx):
            await asyncio.sleep(0.3)
            return Outcome(extra={"waited": True})

        @route("GET", "/v1/ext/slow", budget_ms=50)
        async def too_slow(call, ctx):
            await asyncio.sleep(1)
    """)  # fmt: skip
    svc = service_with(fraud, name, budget_ms=100)
    assert post(svc, {"features": RECORD})[1]["extensions"] == {"waited": True}
    [route] = extensions.routes(svc)
    reply = route.handler(Call("GET", "/v1/ext/slow", {}, {}, {}, b"", caller=ANONYMOUS))
    assert reply.status == 503
    assert json.loads(reply.body)["code"] == "hook_timeout"


def test_route_hooks_join_the_route_table(fraud: FraudModels, hooks_dir: Path) -> None:
    name = module(hooks_dir, """
        from ferroscore.hooks import Reject, route
        from ferroscore.pipeline import Reply

        @route("GET", "/v1/ext/echo/{word}")
        def echo(call, ctx):
            '''Echoes a word, with the request id.'''
            if call.params["word"] == "no":
                raise Reject("refused", "not that word", status=400)
            ctx.cache.set("last", call.params["word"], 60)
            return {"word": call.params["word"], "id": ctx.request_id}

        @route("POST", "/v1/ext/raw")
        def raw(call, ctx):
            return Reply(201, b"made", {"content-type": "text/plain"})
    """)  # fmt: skip
    svc = service_with(fraud, name)
    table = {(r.method, r.path): r for r in extensions.routes(svc)}
    echo = table["GET", "/v1/ext/echo/{word}"]
    assert echo.summary == "Echoes a word, with the request id."
    reply = echo.handler(
        Call("GET", "/v1/ext/echo/hi", {"word": "hi"}, {}, {}, b"", caller=ANONYMOUS)
    )
    assert json.loads(reply.body)["word"] == "hi"
    assert svc.hook_cache.get("last") == "hi"
    refused = echo.handler(Call("GET", "/", {"word": "no"}, {}, {}, b"", caller=ANONYMOUS))
    assert (refused.status, json.loads(refused.body)["code"]) == (400, "refused")
    made = table["POST", "/v1/ext/raw"].handler(
        Call("POST", "/", {}, {}, {}, b"", caller=ANONYMOUS)
    )
    assert (made.status, made.body) == (201, b"made")


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("import not_a_module_anywhere", "failed to import"),
        ("@decide('m')\ndef a(x): pass", ".a: a decide hook takes two arguments"),
        ("@decide('m')\ndef a(x, y): pass\n@decide('m')\ndef b(x, y): pass", "already has"),
        ("@route('GET', '/v1/models/x')\ndef r(c, x): pass", "under /v1/ext/"),
        ("@route('BREW', '/v1/ext/tea')\ndef r(c, x): pass", "method 'BREW'"),
    ],
)
def test_a_bad_hooks_module_is_refused_naming_the_hook(
    hooks_dir: Path, source: str, says: str
) -> None:
    name = module(hooks_dir, "from ferroscore.hooks import decide, route\n" + source)
    with pytest.raises(HookError, match=says):
        load(name)


def test_several_modules_load_together_and_may_not_collide(hooks_dir: Path) -> None:
    head = "from ferroscore.hooks import decide, route\n"
    a = module(hooks_dir, head + "@decide('m')\ndef a(x, y): pass")
    b = module(hooks_dir, head + "@route('GET', '/v1/ext/b')\ndef b(c, x): pass")
    both = load(f"{a}, {b}")
    assert (list(both.decide), [h.target for h in both.routes]) == (["m"], ["GET /v1/ext/b"])
    assert both.module == f"{a},{b}"
    again = module(hooks_dir, head + "@decide('m')\ndef c(x, y): pass")
    with pytest.raises(HookError, match="model 'm' already has"):
        load(f"{a},{again}")


def test_no_hooks_leaves_the_score_path_alone(fraud: FraudModels) -> None:
    svc = service_with(fraud, None)
    assert svc.hooks.decide == {}
    assert extensions.routes(svc) == []
    status, answer = post(svc, {"features": RECORD})
    assert status == 200
    assert "extensions" not in answer


def test_decorators_and_cache() -> None:
    with pytest.raises(ValueError, match="positive"):
        decide("m", budget_ms=0)
    cache = TTLCache(max_entries=2)
    cache.set("a", 1, 60)
    cache.set("b", 2, -1)  # already expired
    assert (cache.get("a"), cache.get("b", "gone")) == (1, "gone")
    assert cache.get_or_set("c", 60, lambda: 3) == 3
    assert cache.get_or_set("c", 60, lambda: 4) == 3
    assert Outcome().decisions is None


def enriched_service(fraud: FraudModels, hooks: str) -> Service:
    """The fraud model with "age" supplied by enrichment and unknown keys let through."""
    schema = json.loads(fraud.schema.read_text())
    schema["properties"]["age"]["x-ferroscore-source"] = "enrichment"
    schema["additionalProperties"] = True
    return service_with(fraud, hooks, schema=json.dumps(schema))


ENRICH = """
    from ferroscore.hooks import Context, Incoming, enrich

    CALLS = []

    @enrich("fraud")
    def ages(incoming: Incoming, ctx: Context) -> dict[str, list[object]]:
        CALLS.append(([r.index for r in incoming.rows], ctx.request_id))
        born = [incoming.raw(r.index)["born"] for r in incoming.rows]
        if "garbage" in born:
            return {"age": ["old"] * len(born)}
        if "nothing" in born:
            return {}
        if "extra" in born:
            return {"age": [30] * len(born), "mood": [1] * len(born)}
        return {"age": [2026 - b for b in born]}
"""


WITHOUT_AGE = {k: v for k, v in RECORD.items() if k != "age"}


def test_an_enrichment_hook_supplies_features_callers_may_not_send(
    fraud: FraudModels, hooks_dir: Path
) -> None:
    name = module(hooks_dir, ENRICH)
    svc = enriched_service(fraud, name)
    record = WITHOUT_AGE
    status, enriched = post(svc, {"features": {**record, "born": 1986}})
    assert status == 200, enriched
    direct = service_with(fraud, None)
    _, expected = post(direct, {"features": {**record, "age": 40}})
    assert enriched["score"] == expected["score"]
    # The log records the value the hook supplied.
    [(_, features, _, _)] = logged(svc)
    assert json.loads(features)["age"] == 40
    # A caller may not send it.
    status, refused = post(svc, {"features": {**RECORD, "born": 1986}})
    assert status == 422
    assert refused["errors"][0]["pointer"] == "/features/age"
    assert refused["errors"][0]["code"] == "enrichment_only"


def test_enrichment_sees_a_batch_once_with_its_valid_rows(
    fraud: FraudModels, hooks_dir: Path
) -> None:
    name = module(hooks_dir, ENRICH)
    svc, record = enriched_service(fraud, name), WITHOUT_AGE
    rows = [{"features": {**record, "born": 1990}}, {"features": {**record, "amount": -1}},
            {"features": {**record, "born": 1950}}]  # fmt: skip
    status, answer = post(svc, {"rows": rows, "partial": True})
    assert status == 200, answer
    # Its context carries the request id the decision is logged under.
    assert [([0, 2], answer["request_id"])] == sys.modules[name].CALLS
    assert answer["scores"][1] is None
    assert [json.loads(f)["age"] for _, f, _, _ in logged(svc)] == [36, 76]
    # NDJSON: the same rows, one per line, the raw records read line by line.
    status, answer = post_ndjson(svc, rows)
    assert status == 200, answer
    assert [json.loads(f)["age"] for _, f, _, _ in logged(svc)][-2:] == [36, 76]


@pytest.mark.parametrize(
    ("born", "says"),
    [
        ("garbage", 'a bad value: "age" of row 0: type (expected an integer, got a string)'),
        (1900, 'a bad value: "age" of row 0: maximum'),
        ("nothing", "did not supply the required feature 'age'"),
        ("extra", "supplied 'mood', which the schema does not mark as enriched"),
    ],
)
def test_a_bad_enrichment_fails_its_request_naming_the_hook_and_feature(
    fraud: FraudModels, hooks_dir: Path, born: object, says: str
) -> None:
    name = module(hooks_dir, ENRICH)
    svc, record = enriched_service(fraud, name), WITHOUT_AGE
    status, answer = post(svc, {"features": {**record, "born": born}})
    assert (status, answer["code"]) == (500, "hook_failed")
    assert f"{name}.ages" in answer["message"]
    assert says in answer["message"]
    # Nothing was scored, so nothing is logged; the next request is served.
    assert logged(svc) == []
    assert post(svc, {"features": {**record, "born": 1980}})[0] == 200


MARK_ROLE = """
    from ferroscore.hooks import Outcome, Scored, decide

    @decide("fraud")
    def mark(scored: Scored, ctx: Context) -> Outcome:
        return Outcome(decisions=["shadow" if ctx.shadow else "live"] * len(scored.rows))
"""


def test_a_shadow_is_scored_on_the_champions_enrichment_with_its_decision_hook(
    fraud: FraudModels, hooks_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module(hooks_dir, ENRICH + MARK_ROLE)
    svc = enriched_service(fraud, name)
    champion = svc.catalog.current()["default"]["fraud"].champion
    challenger = Endpoint("fraud", 4, Model.load(fraud.xgboost), champion.schema,
                          thresholds=champion.thresholds)  # fmt: skip
    monkeypatch.setattr(
        svc.catalog, "current", lambda: {"default": {"fraud": Served(champion, challenger, 1)}}
    )
    jobs: list[Any] = []
    monkeypatch.setattr(svc.shadow, "submit", lambda endpoint, job, tenant: jobs.append(job))
    record = WITHOUT_AGE
    rows = [{"features": {**record, "born": 1990}}, {"features": {**record, "amount": -1}},
            {"features": {**record, "born": 1950}}]  # fmt: skip
    status, answer = post(svc, {"rows": rows, "partial": True})
    assert status == 200, answer
    assert answer["decisions"] == ["live", None, "live"]
    [job] = jobs
    shadow = job()
    # The champion's values, not a second call of the hook.
    assert len(sys.modules[name].CALLS) == 1
    assert shadow.request_id == answer["request_id"]
    assert [(i, json.loads(f)["age"], d) for i, f, _, d in shadow.rows()] == [
        (0, 36, "shadow"), (2, 76, "shadow")]  # fmt: skip
    direct = Endpoint("fraud", 4, Model.load(fraud.xgboost), fraud.schema.read_text())
    _, plain = direct.score(json.dumps({"rows": [{"features": {**WITHOUT_AGE, "age": 36}}]}))
    [(_, _, want, _)] = plain.rows()
    assert shadow.rows()[0][2] == want
    # A challenger that accepts other rows than the champion cannot reuse the values.
    strict = json.loads(champion.schema)
    strict["properties"]["amount"]["maximum"] = 100
    picky = Endpoint("fraud", 5, Model.load(fraud.xgboost), json.dumps(strict))
    monkeypatch.setattr(
        svc.catalog, "current", lambda: {"default": {"fraud": Served(champion, picky, 1)}}
    )
    post(svc, {"rows": rows, "partial": True})
    with pytest.raises(HookFailed, match="other rows than the champion's"):
        jobs[-1]()


CHAINED = """
    import time

    from ferroscore.hooks import Context, Incoming, Outcome, Scored, decide, enrich

    @enrich("fraud", budget_ms=300)
    def ages(incoming: Incoming, ctx: Context) -> dict[str, list[object]]:
        plan = incoming.raw(0)["plan"]
        time.sleep({"slow-enrich": 1.0, "both-slowish": 0.2}.get(plan, 0))
        return {"age": [40] * len(incoming)}

    @decide("fraud", budget_ms=300)
    def verdict(scored: Scored, ctx: Context) -> Outcome:
        plan = scored.raw(0)["plan"]
        time.sleep({"slow-decide": 1.0, "both-slowish": 0.2}.get(plan, 0))
        if plan == "broken":
            raise RuntimeError("no verdict")
        return Outcome(decisions=["chained"] * len(scored))
"""


@pytest.mark.parametrize(
    ("plan", "status", "says", "logged_decision"),
    [
        ("fine", 200, None, "chained"),
        # Each hook has its own budget: together they may take longer than one.
        ("both-slowish", 200, None, "chained"),
        ("slow-enrich", 503, ".ages ran past its budget of 300 ms", None),
        ("slow-decide", 503, ".verdict ran past its budget of 300 ms", "thresholds"),
        ("broken", 500, ".verdict raised RuntimeError('no verdict')", "thresholds"),
    ],
)
def test_enrichment_and_decision_share_one_job_each_with_its_budget(
    fraud: FraudModels, hooks_dir: Path, plan: str, status: int, says: str | None,
    logged_decision: str | None,
) -> None:  # fmt: skip
    name = module(hooks_dir, CHAINED)
    svc = enriched_service(fraud, name)
    got, answer = post(svc, {"features": {**WITHOUT_AGE, "plan": plan}})
    assert got == status, answer
    if says is not None:
        assert says in answer["message"]
    rows = logged(svc)
    if logged_decision is None:
        # Not scored: nothing to log.
        assert rows == []
        return
    [(_, features, [score], decision)] = rows
    assert json.loads(features)["age"] == 40
    if logged_decision == "thresholds":
        # Scored, then the decision hook failed: the thresholds' decision is logged.
        assert decision == ("decline" if score >= 0.5 else "approve")
    else:
        assert decision == logged_decision
        assert answer["decision"] == logged_decision
