"""What hooks cost a scoring request, in one process, through the score route's handler (no
HTTP): no hook, a decision hook that keeps the answer, one that reads the rows and decides,
and an enrichment hook that supplies one feature. Medians of repeated runs; writes
bench/results/hooks.md. Run: make bench-hooks."""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import machine, quick_run, write_report

from ferroscore import Endpoint, Model
from ferroscore.access.auth import ANONYMOUS
from ferroscore.pipeline import Call
from ferroscore.serving.routes import score

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from support import stub_service, train_fraud_models  # noqa: E402

HOOKS = """
from ferroscore.hooks import Outcome, decide, enrich

@decide("keeps")
def keeps(scored, ctx):
    return None

@decide("decides")
def decides(scored, ctx):
    return Outcome(decisions=[r.decision for r in scored.rows])

@enrich("enriched")
def enriched(incoming, ctx):
    return {"age": [40] * len(incoming)}

@enrich("both")
def both_in(incoming, ctx):
    return {"age": [40] * len(incoming)}

@decide("both")
def both_out(scored, ctx):
    return Outcome(extra={"rows": len(scored)})
"""

RECORD = {"amount": 120.0, "age": 40, "merchant": "travel", "card_present": False}
THRESHOLDS = json.dumps([{"min": 0.5, "decision": "decline"}, {"decision": "approve"}])


def main() -> None:
    quick = quick_run(__doc__)
    calls, repeats = (200, 3) if quick else (3000, 7)
    work = Path(tempfile.mkdtemp(prefix="ferroscore-hooks-"))
    try:
        print(write_report("hooks.md", run(work, calls, repeats)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, calls: int, repeats: int) -> list[str]:
    fraud = train_fraud_models(work)
    (work / "bench_hooks.py").write_text(HOOKS)
    sys.path.insert(0, str(work))
    schema = json.loads(fraud.schema.read_text())
    supplied = json.loads(fraud.schema.read_text())
    supplied["properties"]["age"]["x-ferroscore-source"] = "enrichment"
    supplied["required"].remove("age")

    def endpoint(s: dict[str, object]) -> Endpoint:
        return Endpoint("m", 1, Model.load(fraud.lightgbm), json.dumps(s), thresholds=THRESHOLDS)

    names = {"none": schema, "keeps": schema, "decides": schema, "enriched": supplied,
             "both": supplied}  # fmt: skip
    service = stub_service({n: endpoint(s) for n, s in names.items()},
                           {"FERROSCORE_HOOKS": "bench_hooks"})  # fmt: skip
    handler = score.score(service)
    without_age = {k: v for k, v in RECORD.items() if k != "age"}

    def per_request_us(name: str) -> float:
        body = json.dumps({"features": without_age if names[name] is supplied else RECORD})
        call = Call("POST", "/", {"name": name}, {}, {}, body, caller=ANONYMOUS)
        if handler(call).status != 200:
            raise RuntimeError(f"{name}: {handler(call).body!r}")
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                handler(call)
            samples.append((time.perf_counter() - start) / calls * 1e6)
            service.decisions.recorded.clear()
        return statistics.median(samples)

    rows = [
        ("no hook", "none"),
        ("a decision hook that keeps the answer", "keeps"),
        ("a decision hook that reads the rows and decides", "decides"),
        ("an enrichment hook that supplies one feature", "enriched"),
        ("both: the enrichment, and a decision hook adding a field", "both"),
    ]
    base = per_request_us("none")
    lines = [
        "# What hooks cost a scoring request",
        "",
        f"Machine: {machine()}. The score route's handler on one record, in process (no",
        f"HTTP), the LightGBM card-fraud model with thresholds; medians of {repeats} runs of",
        f"{calls} requests.",
        "",
        "| hooks | µs per request | added |",
        "|---|---:|---:|",
    ]
    for label, name in rows:
        us = per_request_us(name)
        lines.append(f"| {label} | {us:.1f} | {us - base:+.1f} |")
    return lines


if __name__ == "__main__":
    main()
