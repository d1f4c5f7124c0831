"""Scoring files, not requests: `Scorer` scores Arrow tables and pandas frames by a model's
schema, in process, Spark, Ray or Dask (`scorer`; public as `ferroscore.scorer.Scorer`), and
`files` reads Parquet, CSV and NDJSON inputs in batches and writes the results for
`ferroscore score`. It may import `models` and the foundations (`config`, `_core`)."""
