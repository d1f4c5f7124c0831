"""Baseline (b): Litestar + msgspec on Granian with onnxruntime — the fastest pure-Python
stack."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np
import onnxruntime as ort
from common import SCORE_PATH, feature_names, onnx_path, response
from litestar import Litestar, post

NAMES = feature_names()
Features = msgspec.defstruct(
    "Features",
    [(n, Annotated[float, msgspec.Meta(ge=0)]) for n in NAMES],
    forbid_unknown_fields=True,
)
Record = msgspec.defstruct("Record", [("features", Features)], forbid_unknown_fields=True)

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(str(onnx_path()), options)


@post(SCORE_PATH, sync_to_thread=False, status_code=200)
def score(data: Record) -> dict[str, Any]:  # type: ignore[valid-type]
    row = np.array([[getattr(data.features, n) for n in NAMES]], dtype=np.float32)  # type: ignore[attr-defined]
    probabilities = session.run(None, {"x": row})[1]
    return response(float(probabilities[0][1]))


app = Litestar(route_handlers=[score])
