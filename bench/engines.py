"""Tree-scoring engines side by side, one thread, in one process: ferroscore against xgboost,
LightGBM, onnxruntime's TreeEnsemble, treelite/tl2cgen (compiled C) and lleaves (LLVM).

Models: 200-tree depth-6 binary models on 30 features, trained here by xgboost and by LightGBM
on 20,000 synthetic rows (so the trees really reach depth 6); LightGBM in its default shape
(31 leaves grown leaf-wise, no depth limit: deeper, lopsided trees); and the bundled demo model
the service serves (200 small trees). Measured: one row per call, the same row again and again
(branch predictors learn its path) and 1,000 different rows in turn (as a service sees them);
a batch of 10,000 rows; medians of repeated runs. Writes bench/results/engines.md.
Run: make bench-engines."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, make_classification
from timing import machine, per_call_us, quick_run, write_report

from ferroscore import Model

Predict = Callable[[np.ndarray], Any]


def onnx_session(onnx_model: Any) -> Predict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # It warns on every batch that its label output's declared shape is 1.
    options.log_severity_level = 3
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


def xgboost_engines(booster: xgb.Booster, workdir: Path) -> dict[str, Predict]:
    import onnxmltools
    import treelite
    from onnxmltools.convert.common.data_types import FloatTensorType

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


Result = tuple[float, float, float]


def lgb_depths(booster: lgb.Booster) -> str:
    """The range of the trees' depths, as "6-17"."""

    def depth(node: dict[str, Any]) -> int:
        if "leaf_index" in node:
            return 0
        return 1 + max(depth(node["left_child"]), depth(node["right_child"]))

    depths = [depth(t["tree_structure"]) for t in booster.dump_model()["tree_info"]]
    return f"{min(depths)}-{max(depths)}"


def measure(engines: dict[str, Predict], batch: np.ndarray, quick: bool) -> dict[str, Result]:
    """Per engine: µs per call on one repeated row, on 1,000 rows in turn; batch rows/s."""
    calls, repeats = (50, 3) if quick else (2000, 7)
    rows = [np.ascontiguousarray(batch[i : i + 1]) for i in range(1000)]
    results = {}
    for name, predict in engines.items():
        n = max(calls // (20 if "xgboost" in name or "lightgbm" in name else 1), 10)
        same = per_call_us(lambda p=predict: p(rows[0]), n, repeats)
        turn = iter(rows * (n * (repeats + 1) // len(rows) + 1))
        varied = per_call_us(lambda p=predict, t=turn: p(next(t)), n, repeats)
        batch_us = per_call_us(lambda p=predict: p(batch), 2 if quick else 10, repeats)
        results[name] = (same, varied, len(batch) / batch_us * 1e6)
    return results


def table(title: str, results: dict[str, Result], model: Model) -> list[str]:
    ours = results["ferroscore"]
    others = {k: v for k, v in results.items() if k != "ferroscore"}
    lines = [
        f"### {title}",
        "",
        "| engine | one row, repeated (µs) | vs ferroscore | one row, 1,000 in turn (µs) "
        "| vs ferroscore | batch of 10,000 (rows/s) | vs ferroscore |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (same, varied, rows) in sorted(results.items(), key=lambda kv: kv[1][1]):
        lines.append(
            f"| {name} | {same:,.2f} | {same / ours[0]:.1f}x | {varied:,.2f} | "
            f"{varied / ours[1]:.1f}x | {rows:,.0f} | {ours[2] / rows:.2f}x |"
        )
    fastest = [min(v[i] for v in others.values()) / ours[i] for i in range(2)]
    best_batch = max(others.items(), key=lambda kv: kv[1][2])
    lines += [
        "",
        f"The fastest other engine takes {fastest[0]:.1f}x ferroscore's time on a repeated row "
        f"and {fastest[1]:.1f}x on rows in turn. The fastest other batch ({best_batch[0]}) "
        f"runs at {best_batch[1][2] / ours[2]:.2f}x ferroscore's rows/s.",
        f"ferroscore holds {model.memory_bytes:,} bytes for {model.n_nodes:,} tree nodes "
        f"({model.memory_bytes / model.n_nodes:.1f} bytes per node, batch layout included).",
        "",
    ]
    return lines


def main() -> None:
    quick = quick_run(__doc__)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    x, y = make_classification(
        n_samples=30_000, n_features=30, n_informative=20, random_state=0, flip_y=0.05
    )
    train, (x, y) = (x[10_000:], y[10_000:]), (x[:10_000], y[:10_000])
    breast = load_breast_cancer()
    rng = np.random.default_rng(0)
    breast_batch = np.ascontiguousarray(
        breast.data[rng.integers(0, len(breast.data), 10_000)] * rng.uniform(0.9, 1.1, (10_000, 30))
    )
    lines = [
        "# Tree engines: ferroscore vs xgboost, LightGBM, onnxruntime, treelite/tl2cgen, lleaves",
        "",
        f"Machine: {machine()}. One thread everywhere; medians of repeated runs in one process.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lgb_train = lgb.Dataset(*train)
        xgb_booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 6, "seed": 0, "nthread": 1},
            xgb.DMatrix(*train),
            num_boost_round=200,
        )
        lgb_params = {"objective": "binary", "verbose": -1}
        lgb_depth6 = lgb.train(
            lgb_params | {"num_leaves": 64, "max_depth": 6}, lgb_train, num_boost_round=200
        )
        lgb_default = lgb.train(lgb_params, lgb_train, num_boost_round=200)
        demo_bytes = resources.files("ferroscore.demo").joinpath("model.json").read_bytes()
        cases: list[tuple[str, xgb.Booster | lgb.Booster, np.ndarray]] = [
            ("XGBoost, 200 trees of depth 6, 30 features", xgb_booster, x),
            ("LightGBM, 200 trees of depth 6, 30 features", lgb_depth6, x),
            (
                "LightGBM in its default shape (31 leaves, no depth limit): 200 trees of depth "
                f"{lgb_depths(lgb_default)}, 30 features",
                lgb_default,
                x,
            ),
            (
                "The demo model: XGBoost, 200 trees of depth ≤ 6 (most far smaller), 30 features",
                xgb.Booster(model_file=bytearray(demo_bytes)),
                breast_batch,
            ),
        ]
        for case, (title, booster, batch) in enumerate(cases):
            # Each case compiles into its own directory: a shared library loaded twice under
            # one path would be the first one again.
            workdir = Path(tmp) / str(case)
            workdir.mkdir()
            if isinstance(booster, xgb.Booster):
                model = Model.load(bytes(booster.save_raw("json")))
                others = xgboost_engines(booster, workdir)
            else:
                model = Model.load(booster.model_to_string().encode())
                others = lightgbm_engines(booster, workdir)
            engines = {"ferroscore": lambda x, m=model: m.predict(x, parallel=False)} | others
            batch = np.ascontiguousarray(batch, dtype=np.float64)
            lines += table(title, measure(engines, batch, quick), model)
    print(write_report("engines.md", lines))


if __name__ == "__main__":
    main()
