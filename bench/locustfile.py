"""Locust scenarios against a running ferroscore (`make bench-locust SCENARIO=...` starts one):

- single: one record per request;
- batch: 100 records per request;
- mixed: single and batch scoring plus model-metadata reads.

Records are drawn from the demo data set's real rows with ±10% noise; BENCH_INVALID_SHARE of
them (default 0.05) are broken on purpose — a negative value, a string, a missing or an unknown
feature — and must get a 422, which counts as success. BENCH_RATE (requests/s per user) turns
on the fixed-rate mode: latency percentiles at a given load, the honest way to report latency.
"""

from __future__ import annotations

import os
import random

import orjson
from locust import FastHttpUser, constant, constant_throughput, task
from sklearn.datasets import load_breast_cancer

MODEL = "breast-cancer"
SCORE = f"/v1/models/{MODEL}/score"
SCENARIO = os.environ.get("BENCH_SCENARIO", "single")
INVALID_SHARE = float(os.environ.get("BENCH_INVALID_SHARE", "0.05"))
RATE = float(os.environ.get("BENCH_RATE", "0"))
BATCH = 100

_data = load_breast_cancer()
NAMES = [n.replace(" ", "_") for n in _data.feature_names]
ROWS = _data.data


def record(rng: random.Random) -> tuple[dict[str, object], bool]:
    """A realistic record and whether it is valid."""
    row = ROWS[rng.randrange(len(ROWS))]
    features: dict[str, object] = {
        n: float(v) * rng.uniform(0.9, 1.1) for n, v in zip(NAMES, row, strict=True)
    }
    if rng.random() >= INVALID_SHARE:
        return {"features": features}, True
    name = rng.choice(NAMES)
    match rng.randrange(4):
        case 0:
            features[name] = -1.0
        case 1:
            features[name] = "n/a"
        case 2:
            del features[name]
        case _:
            features["colour"] = "red"
    return {"features": features}, False


class ScoringUser(FastHttpUser):
    """One caller of the scoring API."""

    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()

    def _post(self, body: dict[str, object], valid: bool, name: str) -> None:
        expected = 200 if valid else 422
        with self.client.post(
            SCORE,
            data=orjson.dumps(body),
            headers={"content-type": "application/json"},
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code == expected:
                response.success()
            else:
                response.failure(f"expected {expected}, got {response.status_code}")

    @task(70 if SCENARIO == "mixed" else (1 if SCENARIO == "single" else 0))
    def single(self) -> None:
        body, valid = record(self.rng)
        self._post(body, valid, "score one record")

    @task(10 if SCENARIO == "mixed" else (1 if SCENARIO == "batch" else 0))
    def batch(self) -> None:
        records = [record(self.rng) for _ in range(BATCH)]
        valid = all(v for _, v in records)
        self._post({"rows": [r for r, _ in records]}, valid, f"score {BATCH} records")

    @task(20 if SCENARIO == "mixed" else 0)
    def metadata(self) -> None:
        self.client.get(f"/v1/models/{MODEL}", name="model metadata")
