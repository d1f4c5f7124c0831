"""Scoring Parquet with Dask: `map_partitions` over a LocalCluster of 2 worker processes. The
scorer travels to the workers as its model's bytes and is built once per worker.

    python examples/offline/with_dask.py --job DIR --out scores/
"""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd
import pyarrow as pa
from applications import Job, main
from dask.distributed import Client, LocalCluster

from ferroscore.scorer import Scorer


def score(job: Job, out: Path, workers: int = 2, scorer: Scorer | None = None) -> Path:
    scorer = scorer or job.scorer()
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1",
                     dashboard_address=None) as cluster,
        Client(cluster),
    ):  # fmt: skip
        frame = dd.read_parquet(job.data)
        meta = scorer.output_schema(pa.Schema.from_pandas(frame._meta, preserve_index=False))
        scores = frame.map_partitions(scorer.score_pandas, meta=meta.empty_table().to_pandas())
        scores.to_parquet(out, write_index=False)
    return out


if __name__ == "__main__":
    main(score, __doc__)
