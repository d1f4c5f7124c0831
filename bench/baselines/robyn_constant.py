"""Baseline (d): Robyn answering a constant JSON body — the framework's ceiling, and
ferroscore's real target. With BENCH_KEEP_THREAD_STATE=1, each worker thread keeps its Python
thread state, as ferroscore's adapter does (`keep_thread_state`): the ceiling of Python on
Robyn once that per-request cost is gone."""

from __future__ import annotations

import os
import threading

import orjson
from common import SCORE_PATH, port, response
from robyn import Response, Robyn

from ferroscore.serving.adapters.robyn import keep_thread_state

BODY = orjson.dumps(response(0.5))
KEEP = os.environ.get("BENCH_KEEP_THREAD_STATE") == "1"
kept: set[int] = set()
app = Robyn(__file__)


@app.post(SCORE_PATH)
def score() -> Response:
    if KEEP and threading.get_ident() not in kept:
        kept.add(threading.get_ident())
        keep_thread_state()
    return Response(status_code=200, headers={"content-type": "application/json"}, description=BODY)


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=port(), _check_port=False)
