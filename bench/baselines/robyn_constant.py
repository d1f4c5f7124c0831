"""Baseline (d): Robyn answering a constant JSON body — the framework's ceiling, and
ferroscore's real target."""

from __future__ import annotations

import orjson
from common import SCORE_PATH, port, response
from robyn import Response, Robyn

BODY = orjson.dumps(response(0.5))
app = Robyn(__file__)


@app.post(SCORE_PATH)
def score() -> Response:
    return Response(status_code=200, headers={"content-type": "application/json"}, description=BODY)


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=port(), _check_port=False)
