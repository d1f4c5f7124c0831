"""Baseline (c): plain Robyn + orjson + onnxruntime — what a performance-minded Robyn user
writes without ferroscore (validation by hand, as such users do)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import orjson
from common import SCORE_PATH, feature_names, onnx_path, port, response
from robyn import Request, Response, Robyn

NAMES = feature_names()
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(str(onnx_path()), options)
app = Robyn(__file__)
JSON = {"content-type": "application/json"}


def error(status: int, message: str) -> Response:
    return Response(status_code=status, headers=JSON, description=orjson.dumps({"error": message}))


@app.post(SCORE_PATH)
def score(request: Request) -> Response:
    try:
        features = orjson.loads(request.body)["features"]
        row = [float(features[n]) for n in NAMES]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        return error(400 if isinstance(e, orjson.JSONDecodeError) else 422, str(e))
    if len(features) != len(NAMES) or min(row) < 0:
        return error(422, "unknown or negative features")
    probabilities = session.run(None, {"x": np.array([row], dtype=np.float32)})[1]
    return Response(
        status_code=200,
        headers=JSON,
        description=orjson.dumps(response(float(probabilities[0][1]))),
    )


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=port(), _check_port=False)
