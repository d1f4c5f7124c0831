"""Trains the credit model of this example: LightGBM with monotone constraints on synthetic
loan applications, so that more debt never lowers the risk and more income never raises it
(what a lender must be able to explain). The score is the probability of default.

    python examples/credit/train.py [--rows N] [--seed N] [--out DIR]

Writes DIR/model.txt and DIR/train.parquet, from which `ferroscore models push --data`
infers the input schema.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

HOUSING = ["rent", "mortgage", "own"]
#: Each feature's constraint: +1 risk never falls as it grows, -1 never rises, 0 free.
MONOTONE = {
    "income": -1,
    "debt_to_income": 1,
    "utilization": 1,
    "delinquencies_2y": 1,
    "history_years": -1,
    "inquiries_6m": 1,
    "loan_amount": 1,
    "housing": 0,
}


def applications(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10.9, 0.5, n).round(-2),
            "debt_to_income": rng.beta(2.0, 5.0, n).round(3),
            "utilization": rng.beta(1.5, 3.0, n).round(3),
            "delinquencies_2y": rng.poisson(0.3, n),
            "history_years": rng.gamma(3.0, 3.0, n).round(1),
            "inquiries_6m": rng.poisson(1.0, n),
            "loan_amount": rng.gamma(2.0, 8000.0, n).round(-2),
            "housing": pd.Categorical(rng.choice(HOUSING, n, p=[0.4, 0.45, 0.15]), HOUSING),
        }
    )
    # Some bureaus return no utilization: LightGBM learns where missing goes.
    frame.loc[rng.random(n) < 0.05, "utilization"] = np.nan
    risk = (
        3.0 * frame["debt_to_income"]
        + 2.5 * frame["utilization"].fillna(0.3)
        + 0.7 * frame["delinquencies_2y"]
        + 0.25 * frame["inquiries_6m"]
        - 0.08 * frame["history_years"]
        - 0.8 * np.log(frame["income"] / 50_000)
        + 0.6 * np.log1p(frame["loan_amount"] / 10_000)
        + 0.3 * (frame["housing"] == "rent")
    )
    frame["default"] = rng.random(n) < 1 / (1 + np.exp(-(risk - 3.6)))
    return frame


def train(frame: pd.DataFrame, seed: int) -> lgb.Booster:
    features = frame[list(MONOTONE)]
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.05, "verbose": -1,
              "seed": seed, "monotone_constraints": list(MONOTONE.values()),
              "monotone_constraints_method": "advanced"}  # fmt: skip
    return lgb.train(params, lgb.Dataset(features, frame["default"]), num_boost_round=200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("credit"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frame = applications(args.rows, args.seed)
    train(frame, args.seed).save_model(args.out / "model.txt")
    frame.drop(columns="default").to_parquet(args.out / "train.parquet")
    rate = frame["default"].mean()
    print(f"wrote {args.out / 'model.txt'} and {args.out / 'train.parquet'}"
          f" ({args.rows} applications, {rate:.1%} defaults)")  # fmt: skip


if __name__ == "__main__":
    main()
