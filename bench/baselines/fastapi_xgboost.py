"""Baseline (a): FastAPI + Pydantic + xgboost on uvicorn — what most teams deploy."""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from common import SCORE_PATH, feature_names, model_path, response
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, create_model

NAMES = feature_names()
Features = create_model(
    "Features",
    __config__=ConfigDict(extra="forbid"),
    **{n: (float, Field(ge=0)) for n in NAMES},  # type: ignore[call-overload]
)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: Features  # type: ignore[valid-type]


booster = xgb.Booster(model_file=str(model_path()))
booster.set_param({"nthread": 1})
app = FastAPI()


@app.post(SCORE_PATH)
def score(record: Record) -> dict[str, object]:
    row = np.array([[getattr(record.features, n) for n in NAMES]], dtype=np.float64)
    return response(float(booster.inplace_predict(row)[0]))
