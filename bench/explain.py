"""The cost of reason codes, one row, one thread, side by side: ferroscore's exact TreeSHAP
(`Model.contributions`, and what `"explain": 5` adds to a scored request) against xgboost's
`pred_contribs` and the `shap` package's TreeExplainer, on the demo model (200 trees, depth
<= 6, 30 features) and a LightGBM model of the same shape against its `pred_contrib`.
Writes bench/results/explain.md. Run: make bench-explain."""

from __future__ import annotations

import json
from importlib import resources

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from timing import demo_endpoint, machine, per_call_us, quick_run, write_report

from ferroscore import Model


def main() -> None:
    quick = quick_run(__doc__)
    calls, repeats = (50, 3) if quick else (2000, 7)
    slow_calls = max(calls // 20, 10)
    import shap

    endpoint = demo_endpoint()
    model = endpoint.model
    names = model.feature_names or []
    data = load_breast_cancer().data
    row = data[:1].copy()
    body = json.dumps({"features": dict(zip(names, map(float, data[0]), strict=True))})
    explained = json.dumps({**json.loads(body), "explain": 5})
    booster = xgb.Booster(model_file=bytearray(
        resources.files("ferroscore.demo").joinpath("model.json").read_bytes()))  # fmt: skip
    booster.set_param({"nthread": 1})
    explainer = shap.TreeExplainer(booster)
    lgb_model = lgb.train({"objective": "binary", "num_leaves": 63, "max_depth": 6,
                           "verbose": -1, "num_threads": 1},
                          lgb.Dataset(data, load_breast_cancer().target),
                          num_boost_round=200)  # fmt: skip
    ours_lgb = Model.load(lgb_model.model_to_string().encode())
    lgb_explainer = shap.TreeExplainer(lgb_model)

    # The same numbers first: a benchmark of wrong answers measures nothing.
    dmatrix = xgb.DMatrix(row, feature_names=booster.feature_names)
    np.testing.assert_allclose(
        model.contributions(row)[0], booster.predict(dmatrix, pred_contribs=True)[0], atol=1e-5
    )
    np.testing.assert_allclose(ours_lgb.contributions(row)[0],
                               lgb_model.predict(row, pred_contrib=True)[0], atol=1e-9)  # fmt: skip

    def xgb_contribs() -> object:
        d = xgb.DMatrix(row, feature_names=booster.feature_names, nthread=1)
        return booster.predict(d, pred_contribs=True)

    cases = [
        ("XGBoost demo: contributions of one row", per_call_us(
            lambda: model.contributions(row), calls, repeats), [
            ("xgboost pred_contribs", per_call_us(xgb_contribs, slow_calls, repeats)),
            ("shap TreeExplainer", per_call_us(
                lambda: explainer.shap_values(row), slow_calls, repeats)),
        ]),
        ("LightGBM 200 trees, depth 6: contributions of one row", per_call_us(
            lambda: ours_lgb.contributions(row), calls, repeats), [
            ("lightgbm pred_contrib", per_call_us(
                lambda: lgb_model.predict(row, pred_contrib=True, num_threads=1), slow_calls,
                repeats)),
            ("shap TreeExplainer", per_call_us(
                lambda: lgb_explainer.shap_values(row), slow_calls, repeats)),
        ]),
    ]  # fmt: skip
    plain = per_call_us(lambda: endpoint.score(body), calls, repeats)
    with_reasons = per_call_us(lambda: endpoint.score(explained), calls, repeats)

    lines = [
        "# Reason codes: ferroscore's TreeSHAP against xgboost, LightGBM and shap",
        "",
        f"Machine: {machine()}; xgboost {xgb.__version__}, lightgbm {lgb.__version__}, shap"
        f" {shap.__version__}; one thread. Medians of {repeats} runs."
        " Command: `make bench-explain`.",
        "",
        "| case | ferroscore (µs) | other | other (µs) | other ÷ ferroscore |",
        "|---|---:|---|---:|---:|",
    ]
    ratios: dict[str, float] = {}
    for case, ours, others in cases:
        for name, theirs in others:
            ratios[f"{case}, {name}"] = theirs / ours
            lines.append(f"| {case} | {ours:.1f} | {name} | {theirs:.1f} | {theirs / ours:.1f}x |")
    demo = min(v for k, v in ratios.items() if k.startswith("XGBoost"))
    lightgbm = min(v for k, v in ratios.items() if k.startswith("LightGBM"))
    lines += [
        "",
        f'A scored request with `"explain": 5` takes {with_reasons:.1f} µs against {plain:.1f} µs'
        f" without (`Endpoint.score`, parse + validate + score + reasons + response):"
        f" {with_reasons - plain:.1f} µs per row for its reasons.",
        "",
        "Target: ≥ 10x faster than the fastest of xgboost's `pred_contribs` and shap on one row"
        f" of the demo model: {demo:.1f}x — {'met' if demo >= 10 else 'NOT met'}."
        f" Against LightGBM's own `pred_contrib` on its model: {lightgbm:.1f}x.",
    ]
    print(write_report("explain.md", lines))


if __name__ == "__main__":
    main()
