"""What every baseline shares: the demo model's files, its feature names, an ONNX conversion
of it, and the response shape ferroscore answers with, so every stack does the same work."""

from __future__ import annotations

import json
import os
import uuid
from importlib import resources
from pathlib import Path

DEMO = resources.files("ferroscore.demo")
MODEL_NAME = "breast-cancer"
SCORE_PATH = f"/v1/models/{MODEL_NAME}/score"
RESULTS = Path(__file__).resolve().parents[1] / "results"


def feature_names() -> list[str]:
    schema = json.loads(DEMO.joinpath("schema.json").read_text())
    props = schema["properties"]
    return sorted(props, key=lambda n: props[n]["x-ferroscore-column"])


def model_path() -> Path:
    return Path(str(DEMO.joinpath("model.json")))


def onnx_path() -> Path:
    """The demo model as ONNX (TreeEnsembleClassifier), converted once and cached."""
    path = RESULTS / "demo.onnx"
    if not path.exists():
        import onnxmltools
        import xgboost as xgb
        from onnxmltools.convert.common.data_types import FloatTensorType

        booster = xgb.Booster(model_file=str(model_path()))
        # onnxmltools wants the f0, f1, ... names xgboost gives unnamed features.
        booster.feature_names = None
        onnx = onnxmltools.convert_xgboost(
            booster, initial_types=[("x", FloatTensorType([None, len(feature_names())]))]
        )
        RESULTS.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(onnx.SerializeToString())
        tmp.replace(path)
    return path


def response(score: float) -> dict[str, object]:
    return {"request_id": str(uuid.uuid4()), "model": MODEL_NAME, "version": 1, "score": score}


def port() -> int:
    return int(os.environ["BENCH_PORT"])
