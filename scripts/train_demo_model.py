"""Trains the bundled demo model: XGBoost binary:logistic, 200 trees of depth 6, on
scikit-learn's breast-cancer data (no downloads), and writes it with its input schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import xgboost as xgb
from sklearn.datasets import load_breast_cancer

OUT = Path(__file__).resolve().parent.parent / "python" / "ferroscore" / "demo"


def snake_case(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def main() -> None:
    data = load_breast_cancer()
    names = [snake_case(n) for n in data.feature_names]
    dtrain = xgb.DMatrix(data.data, label=data.target, feature_names=names)
    params = {
        "objective": "binary:logistic",
        "max_depth": 6,
        "eta": 0.1,
        "seed": 0,
        "tree_method": "hist",
        "nthread": 1,
    }
    booster = xgb.train(params, dtrain, num_boost_round=200)
    booster.save_model(OUT / "model.json")

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "breast-cancer demo features",
        "type": "object",
        "properties": {
            name: {"type": "number", "minimum": 0, "x-ferroscore-column": i}
            for i, name in enumerate(names)
        },
        "required": names,
        "additionalProperties": False,
    }
    (OUT / "schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    # The tour's curl request: the first row of the data set, as Python writes its floats.
    example = {"features": dict(zip(names, map(float, data.data[0]), strict=True))}
    (OUT / "example.json").write_text(json.dumps(example, indent=2) + "\n")
    print(f"wrote model.json, schema.json and example.json to {OUT}")


if __name__ == "__main__":
    main()
