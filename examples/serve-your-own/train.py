"""Trains a card-fraud model the way a team would: LightGBM on a pandas DataFrame with a
categorical merchant, a boolean, an integer and amounts that are sometimes missing. Writes
the model and its training data, which `ferroscore schema infer` reads.

    python examples/serve-your-own/train.py [--seed N] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

MERCHANTS = ["fuel", "grocery", "online", "travel"]


def transactions(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 60.0, n).round(2),
            "account_age_days": rng.integers(0, 3650, n),
            "merchant": pd.Categorical(rng.choice(MERCHANTS, n), categories=MERCHANTS),
            "card_present": rng.random(n) < 0.6,
        }
    )
    frame.loc[rng.random(n) < 0.03, "amount"] = np.nan
    risk = (
        (frame["amount"].fillna(0) > 150).astype(float)
        + frame["merchant"].isin(["online", "travel"]).astype(float)
        + (frame["account_age_days"] < 90).astype(float)
        - frame["card_present"].astype(float)
    )
    frame["is_fraud"] = (rng.random(n) < 1 / (1 + np.exp(-(risk * 1.8 - 3.5)))).astype(int)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("fraud"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frame = transactions(args.rows, args.seed)
    features = frame.drop(columns="is_fraud")
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1, "verbose": -1,
         "seed": args.seed},
        lgb.Dataset(features, frame["is_fraud"]),
        num_boost_round=100,
    )  # fmt: skip
    booster.save_model(args.out / "model.txt")
    frame.to_parquet(args.out / "train.parquet")
    print(f"wrote {args.out / 'model.txt'} and {args.out / 'train.parquet'} ({args.rows} rows)")


if __name__ == "__main__":
    main()
