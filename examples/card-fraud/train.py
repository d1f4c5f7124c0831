"""Trains the card-fraud model of this example: XGBoost on synthetic card transactions whose
velocity features (the card's transactions and spend in the last hour) and device flag (first
seen today) are what `fraud_hooks.py` computes from the decision log when it serves.

    python examples/card-fraud/train.py [--rows N] [--seed N] [--out DIR]

Writes DIR/model.json. The input schema, `schema.json` beside this script, binds the same
columns in the same order; `ferroscore models push` checks that it fits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

#: In the order of the schema's category codes (`x-ferroscore-categories`).
MERCHANTS = ["grocery", "fuel", "online", "travel", "electronics"]
#: The model's columns, in the schema's `x-ferroscore-column` order.
COLUMNS = ["amount", "merchant", "card_present", "card_count_1h", "card_amount_1h",
           "device_new_today"]  # fmt: skip


def transactions(n: int, seed: int) -> pd.DataFrame:
    """Synthetic transactions: a fraudster runs a card fast, online, from a new device."""
    rng = np.random.default_rng(seed)
    count = rng.poisson(0.8, n)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 80.0, n).round(2),
            "merchant": pd.Categorical(
                rng.choice(MERCHANTS, n, p=[0.35, 0.2, 0.25, 0.1, 0.1]), categories=MERCHANTS
            ),
            "card_present": rng.random(n) < 0.55,
            "card_count_1h": count,
            "card_amount_1h": (count * rng.gamma(2.0, 60.0, n)).round(2),
            "device_new_today": rng.random(n) < 0.08,
        }
    )
    risk = (
        0.9 * np.log1p(frame["card_count_1h"])
        + 0.6 * (frame["card_amount_1h"] > 400)
        + 1.2 * frame["device_new_today"]
        + 0.8 * frame["merchant"].isin(["online", "electronics"])
        + 0.5 * (frame["amount"] > 300)
        - 1.0 * frame["card_present"]
    )
    frame["is_fraud"] = rng.random(n) < 1 / (1 + np.exp(-(1.6 * risk - 4.0)))
    return frame


def train(frame: pd.DataFrame, seed: int) -> xgb.Booster:
    data = xgb.DMatrix(frame[COLUMNS], frame["is_fraud"], enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 5, "eta": 0.1, "seed": seed,
              "tree_method": "hist", "max_cat_to_onehot": 1}  # fmt: skip
    return xgb.train(params, data, num_boost_round=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("card-fraud"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frame = transactions(args.rows, args.seed)
    train(frame, args.seed).save_model(args.out / "model.json")
    rate = frame["is_fraud"].mean()
    print(f"wrote {args.out / 'model.json'} ({args.rows} transactions, {rate:.1%} fraud)")


if __name__ == "__main__":
    main()
