"""Scoring Parquet with Ray Data: `map_batches` on Arrow batches, on a local Ray of 2 CPUs.
The scorer travels to the workers as its model's bytes and is built once per worker.

    python examples/offline/with_ray.py --job DIR --out scores/
"""

from __future__ import annotations

from pathlib import Path

import ray
from applications import Job, main

from ferroscore.scorer import Scorer


def score(job: Job, out: Path, cpus: int = 2, scorer: Scorer | None = None) -> Path:
    scorer = scorer or job.scorer()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        data = ray.data.read_parquet(str(job.data))
        data.map_batches(scorer.score_arrow, batch_format="pyarrow").write_parquet(str(out))
    finally:
        ray.shutdown()
    return out


if __name__ == "__main__":
    main(score, __doc__)
