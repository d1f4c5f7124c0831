"""Scoring Parquet with Spark: `mapInArrow` on a local Spark of 2 cores (a JVM is needed:
Debian's default-jre-headless). The scorer travels to the executors as its model's bytes and
is built once per Python worker.

    python examples/offline/with_spark.py --job DIR --out scores/
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
from applications import Job, main
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from ferroscore.scorer import Scorer


def score(job: Job, out: Path, cores: int = 2, scorer: Scorer | None = None) -> Path:
    scorer = scorer or job.scorer()
    # The executors' Python must be this one, which has ferroscore installed; and loopback.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    try:
        frame = spark.read.parquet(str(job.data))
        first = next(job.data.glob("*.parquet"))
        schema = from_arrow_schema(scorer.output_schema(pq.read_schema(first)))
        frame.mapInArrow(scorer.score_batches, schema).write.parquet(str(out))
    finally:
        spark.stop()
    return out


if __name__ == "__main__":
    main(score, __doc__)
