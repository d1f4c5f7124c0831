"""Tree-scoring engines side by side, one thread, in one process: ferroscore against xgboost,
LightGBM, onnxruntime's TreeEnsemble, treelite/tl2cgen (compiled C) and lleaves (LLVM), on a
200-tree depth-6 binary model on 30 features — the demo XGBoost model, and a LightGBM model of
the same shape for the engines that read LightGBM. Single-row latency and 10,000-row batch
throughput, medians; writes bench/results/engines.md. Run: make bench-engines."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from timing import machine, per_call_us, write_report

from ferroscore import Model

Predict = Callable[[np.ndarray], Any]


def onnx_session(onnx_model: Any) -> Predict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_model.SerializeToString(), options)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x.astype(np.float32)})


def compiled_engines(onnx_model: Any, tl_model: Any, lib: Path) -> dict[str, Predict]:
    """onnxruntime and treelite/tl2cgen (compiled with gcc) for one converted model."""
    import tl2cgen

    tl2cgen.export_lib(tl_model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 8})
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    return {
        "onnxruntime TreeEnsemble": onnx_session(onnx_model),
        "treelite/tl2cgen (gcc)": lambda x: predictor.predict(tl2cgen.DMatrix(x)),
    }


def xgboost_engines(path: bytes, workdir: Path) -> dict[str, Predict]:
    import onnxmltools
    import treelite
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = xgb.Booster(model_file=bytearray(path))
    booster.set_param({"nthread": 1})
    # onnxmltools and treelite want the f0, f1, ... names xgboost gives unnamed features.
    plain = booster.copy()
    plain.feature_names = None
    onnx = onnxmltools.convert_xgboost(plain, initial_types=[("x", FloatTensorType([None, 30]))])
    return {
        "xgboost inplace_predict": lambda x: booster.inplace_predict(x),
        **compiled_engines(onnx, treelite.frontend.from_xgboost(plain), workdir / "xgb.so"),
    }


def lightgbm_engines(booster: lgb.Booster, workdir: Path) -> dict[str, Predict]:
    import lleaves
    import onnxmltools
    import treelite
    from onnxmltools.convert.common.data_types import FloatTensorType

    model_file = workdir / "lgb.txt"
    booster.save_model(model_file)
    compiled = lleaves.Model(model_file=str(model_file))
    compiled.compile(cache=str(workdir / "lleaves.o"))
    onnx = onnxmltools.convert_lightgbm(booster, initial_types=[("x", FloatTensorType([None, 30]))])
    return {
        "lightgbm predict": lambda x: booster.predict(x, num_threads=1),
        "lleaves (LLVM)": lambda x: compiled.predict(x, n_jobs=1),
        **compiled_engines(onnx, treelite.frontend.from_lightgbm(booster), workdir / "lgb.so"),
    }


def measure(
    engines: dict[str, Predict], row: np.ndarray, batch: np.ndarray, quick: bool
) -> dict[str, tuple[float, float]]:
    calls, repeats = (50, 3) if quick else (2000, 7)
    results = {}
    for name, predict in engines.items():
        slow = "xgboost" in name or "lightgbm" in name
        single = per_call_us(
            lambda p=predict: p(row), max(calls // (20 if slow else 1), 10), repeats
        )
        batch_us = per_call_us(lambda p=predict: p(batch), 2 if quick else 10, repeats)
        results[name] = (single, len(batch) / batch_us * 1e6)
    return results


def table(title: str, results: dict[str, tuple[float, float]], model: Model) -> list[str]:
    ours_single, ours_rows = results["ferroscore"]
    fastest_other = min(v[0] for k, v in results.items() if k != "ferroscore")
    lines = [
        f"### {title}",
        "",
        "| engine | single row (µs) | vs ferroscore | batch of 10,000 (rows/s) | vs ferroscore |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (single, rows) in sorted(results.items(), key=lambda kv: kv[1][0]):
        lines.append(
            f"| {name} | {single:,.2f} | {single / ours_single:.1f}x | {rows:,.0f} | "
            f"{ours_rows / rows:.2f}x |"
        )
    lines += [
        "",
        f"Fastest other engine on one row: {fastest_other / ours_single:.1f}x ferroscore's time.",
        f"ferroscore holds {model.memory_bytes:,} bytes for {model.n_nodes:,} tree nodes "
        f"({model.memory_bytes / model.n_nodes:.1f} bytes per node, batch layout included).",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    data = load_breast_cancer().data
    rng = np.random.default_rng(0)
    batch = np.ascontiguousarray(
        data[rng.integers(0, len(data), 10_000)] * rng.uniform(0.9, 1.1, (10_000, 30))
    )
    row = np.ascontiguousarray(data[:1])
    lines = [
        "# Tree engines: ferroscore vs xgboost, LightGBM, onnxruntime, treelite/tl2cgen, lleaves",
        "",
        f"Machine: {machine()}. One thread everywhere; medians of repeated runs in one process.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        xgb_bytes = resources.files("ferroscore.demo").joinpath("model.json").read_bytes()
        params = {
            "objective": "binary",
            "num_leaves": 64,
            "max_depth": 6,
            "verbose": -1,
            "seed": 0,
            "min_data_in_leaf": 2,
        }
        booster = lgb.train(
            params, lgb.Dataset(data, load_breast_cancer().target), num_boost_round=200
        )
        cases = [
            (
                "XGBoost demo model (200 trees, depth ≤ 6)",
                Model.load(xgb_bytes),
                lambda: xgboost_engines(xgb_bytes, workdir),
            ),
            (
                "LightGBM model of the same shape (200 trees, depth ≤ 6)",
                Model.load(booster.model_to_string().encode()),
                lambda: lightgbm_engines(booster, workdir),
            ),
        ]
        for title, model, others in cases:
            engines = {"ferroscore": lambda x, m=model: m.predict(x, parallel=False)}
            engines |= others()
            lines += table(title, measure(engines, row, batch, args.quick), model)
    print(write_report("engines.md", lines))


if __name__ == "__main__":
    main()
