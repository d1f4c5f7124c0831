"""Scoring kernels side by side in one process, one thread: ferroscore against xgboost on the
demo model (200 trees, depth <= 6, 30 features). Reports medians of repeated timings and
ratios; writes bench/results/kernel.md. Run: make bench-kernel."""

from __future__ import annotations

from importlib import resources

import numpy as np
import orjson
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from timing import demo_endpoint, machine, per_call_us, quick_run, write_report


def main() -> None:
    quick = quick_run(__doc__)
    calls, repeats = (200, 3) if quick else (5000, 7)

    endpoint = demo_endpoint()
    model = endpoint.model
    model_bytes = resources.files("ferroscore.demo").joinpath("model.json").read_bytes()
    booster = xgb.Booster(model_file=bytearray(model_bytes))
    booster.set_param({"nthread": 1})
    names = model.feature_names or []

    data = load_breast_cancer().data
    row = data[:1].copy()
    rng = np.random.default_rng(0)
    batch = data[rng.integers(0, len(data), 10_000)] * rng.uniform(0.9, 1.1, (10_000, 30))
    body = orjson.dumps({"features": dict(zip(names, map(float, data[0]), strict=True))})

    rows: list[tuple[str, float, float]] = []
    ours = per_call_us(lambda: model.predict(row), calls, repeats)
    theirs = per_call_us(lambda: booster.inplace_predict(row), max(calls // 10, 20), repeats)
    rows.append(("single row, NumPy in (µs/call)", ours, theirs))
    batch_calls = 3 if quick else 10
    ours_b = per_call_us(lambda: model.predict(batch, parallel=False), batch_calls, repeats)
    theirs_b = per_call_us(lambda: booster.inplace_predict(batch), batch_calls, repeats)
    rows.append(("batch of 10,000 rows (µs/call)", ours_b, theirs_b))
    endpoint_us = per_call_us(lambda: endpoint.score(body), calls, repeats)
    orjson_xgb = per_call_us(
        lambda: booster.inplace_predict(
            np.array([list(orjson.loads(body)["features"].values())], dtype=np.float64)
        ),
        max(calls // 10, 20),
        repeats,
    )
    rows.append(
        (f"request body ({len(body)} B) → response bytes (µs/call)", endpoint_us, orjson_xgb)
    )

    lines = [
        "# Scoring kernels: ferroscore vs xgboost",
        "",
        f"Machine: {machine()}; xgboost {xgb.__version__} (nthread=1). Medians of {repeats} runs.",
        "",
        "| measure | ferroscore | xgboost | xgboost / ferroscore |",
        "|---|---:|---:|---:|",
    ]
    for name, a, b in rows:
        lines.append(f"| {name} | {a:,.2f} | {b:,.2f} | {b / a:,.1f}x |")
    lines += [
        "",
        f"Batch throughput: ferroscore {10_000 / ours_b * 1e6:,.0f} rows/s, "
        f"xgboost {10_000 / theirs_b * 1e6:,.0f} rows/s.",
        "The request row compares Endpoint.score (parse, validate, score, serialize in Rust) "
        "with orjson.loads + a NumPy row + xgboost inplace_predict (no validation at all).",
    ]
    print(write_report("kernel.md", lines))


if __name__ == "__main__":
    main()
