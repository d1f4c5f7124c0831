"""The job the offline examples run: synthetic loan applications written as Parquet parts, a
LightGBM model trained on them, its input schema inferred from them, and decision thresholds.

    python examples/offline/applications.py --out DIR [--rows N] [--parts K]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ferroscore import Model
from ferroscore.models.inference import Options, infer_schema
from ferroscore.scorer import Scorer

REGIONS = ["north", "south", "east", "west", "islands"]
EMPLOYMENT = ["salaried", "self-employed", "retired", "student"]
THRESHOLDS = [{"min": 0.5, "decision": "decline"}, {"min": 0.2, "decision": "review"},
              {"decision": "approve"}]  # fmt: skip


@dataclass(frozen=True)
class Job:
    """Where one scoring job's inputs are: a model, its schema and thresholds, the data."""

    model: Path
    schema: Path
    thresholds: Path
    data: Path  # a directory of Parquet parts

    @staticmethod
    def at(out: Path) -> Job:
        """The job `prepare` wrote to `out`."""
        job = Job(out / "model.txt", out / "schema.json", out / "thresholds.json", out / "data")
        if not job.model.exists():
            raise SystemExit(f"{out} holds no job: run examples/offline/applications.py first")
        return job

    def scorer(self, explain: int = 2) -> Scorer:
        """The scorer every example ships to its workers (pickled as the model's bytes)."""
        return Scorer(
            self.model, self.schema.read_text(), self.thresholds.read_text(), explain=explain
        )


def applications(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "application_id": np.arange(n, dtype=np.int64) + 1_000_000,
            "income": rng.lognormal(10.5, 0.5, n).round(2),
            "debt_ratio": rng.beta(2, 5, n),
            "age": rng.integers(18, 80, n),
            "region": pd.Categorical(rng.choice(REGIONS, n), categories=REGIONS),
            "employment": pd.Categorical(rng.choice(EMPLOYMENT, n), categories=EMPLOYMENT),
            "has_mortgage": rng.random(n) < 0.4,
        }
    )
    frame.loc[rng.random(n) < 0.04, "income"] = np.nan
    risk = 3 * frame["debt_ratio"] - np.log(frame["income"].fillna(20_000)) / 5
    risk += (frame["employment"] == "student") * 0.8 + rng.normal(0, 0.5, n)
    frame["defaulted"] = (risk > np.quantile(risk, 0.8)).astype(np.int8)
    return frame


def prepare(out: Path, rows: int = 100_000, parts: int = 4, trees: int = 100) -> Job:
    """Trains the model on one sample and writes `rows` fresh applications in `parts` files."""
    out.mkdir(parents=True, exist_ok=True)
    train = applications(20_000, seed=1)
    x, y = train.drop(columns=["application_id", "defaulted"]), train["defaulted"]
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "verbose": -1},
        lgb.Dataset(x, y),
        num_boost_round=trees,
    )
    job = Job(out / "model.txt", out / "schema.json", out / "thresholds.json", out / "data")
    booster.save_model(str(job.model))
    table = pa.Table.from_pandas(train, preserve_index=False)
    # Types, categories and nullability from the sample, but no bounds: a portfolio of
    # millions reaches incomes a sample of 20,000 never showed.
    options = Options(margin=None, exclude=["application_id", "defaulted"])
    schema = infer_schema(Model.load(job.model), table, options, artifact=job.model.read_bytes())
    job.schema.write_text(json.dumps(schema, indent=2))
    job.thresholds.write_text(json.dumps(THRESHOLDS))
    job.data.mkdir(exist_ok=True)
    fresh = applications(rows, seed=2)
    for i, part in enumerate(np.array_split(np.arange(rows), parts)):
        chunk = pa.Table.from_pandas(fresh.iloc[part], preserve_index=False)
        pq.write_table(chunk, job.data / f"part-{i:03d}.parquet")
    return job


def main(score: Callable[[Job, Path], Path], doc: str | None) -> None:
    """The command line of an engine example: `--job DIR --out DIR`."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--job", type=Path, required=True, help="made by applications.py")
    parser.add_argument("--out", type=Path, required=True, help="where the scores go")
    args = parser.parse_args()
    print(score(Job.at(args.job), args.out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--parts", type=int, default=4)
    args = parser.parse_args()
    print(prepare(args.out, args.rows, args.parts))
