"""`ferroscore score` as a person runs it: a real subprocess over real Parquet and CSV files,
a model file or a registered model, exact scores, one-line refusals with the row and pointer,
and memory that does not grow with the input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg_pool import ConnectionPool

from ferroscore.models.registry import ModelRegistry

from support import FraudModels, build, fraud_frame

THRESHOLDS = [{"min": 0.5, "decision": "decline"}, {"decision": "approve"}]


def score(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferroscore", "score", *map(str, args)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def reference(fraud: FraudModels, frame: pd.DataFrame) -> np.ndarray:
    booster = lgb.Booster(model_file=str(fraud.lightgbm))
    return booster.predict(frame[fraud.features])


def test_scores_a_parquet_file_exactly_with_keys_decisions_and_reasons(
    fraud: FraudModels, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    thresholds = tmp_path / "thresholds.json"
    thresholds.write_text(json.dumps(THRESHOLDS))
    done = score(fraud.lightgbm, "-i", fraud.parquet, "-o", out, "--schema", fraud.schema,
                 "--thresholds", thresholds, "--explain", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "scored 3000 rows" in done.stderr
    assert "rows/s" in done.stderr
    table = pq.read_table(out)
    assert table.column_names == [
        "label", "score", "decision",
        "reason_1", "reason_1_contribution", "reason_2", "reason_2_contribution", "warnings",
    ]  # fmt: skip
    frame = fraud.frame()
    expected = reference(fraud, frame)
    np.testing.assert_allclose(table.column("score").to_numpy(), expected, atol=1e-9)
    assert table.column("label").to_pylist() == frame["label"].tolist()
    decisions = np.where(expected >= 0.5, "decline", "approve")
    assert table.column("decision").to_pylist() == decisions.tolist()
    assert set(table.column("reason_1").to_pylist()) <= set(fraud.features)


def test_csv_in_and_out_by_the_same_rules(fraud: FraudModels, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    done = score(fraud.lightgbm, "-i", fraud.csv, "-o", out, "--schema", fraud.schema,
                 "--key", "label", "--explain", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(out)
    assert list(written.columns) == ["label", "score", "reason_1", "reason_1_contribution",
                                     "warnings"]  # fmt: skip
    np.testing.assert_allclose(written["score"], reference(fraud, fraud.frame()), atol=1e-9)


def test_a_model_file_alone_reads_its_own_feature_names_and_categories(
    fraud: FraudModels, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    done = score(fraud.lightgbm, "-i", fraud.csv, "-o", out)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(
        pq.read_table(out).column("score").to_numpy(), reference(fraud, fraud.frame()), atol=1e-9
    )


def bad_parts(fraud: FraudModels, directory: Path) -> Path:
    """Two Parquet parts of 3000 and 1000 rows; rows 3001 and 3002 break the schema."""
    directory.mkdir()
    frame = fraud.frame()
    frame.to_parquet(directory / "part-0.parquet")
    tail = fraud_frame(1000, seed=9)
    tail.loc[1, "amount"] = -5.0
    tail.loc[2, "merchant"] = None
    tail.to_parquet(directory / "part-1.parquet")
    return directory


def test_a_bad_row_stops_the_run_with_its_row_and_pointer(
    fraud: FraudModels, tmp_path: Path
) -> None:
    parts = bad_parts(fraud, tmp_path / "parts")
    out = tmp_path / "scores.parquet"
    done = score(fraud.lightgbm, "-i", parts, "-o", out, "--schema", fraud.schema)
    assert done.returncode == 1
    assert done.stderr.startswith(
        "Error: refused: row 3001: minimum at /rows/3001/features/amount: must be >= 0, got -5"
    ), done.stderr
    assert "(2 rows refused)" in done.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [parts]


def test_partial_scores_the_rest_and_writes_the_problems(
    fraud: FraudModels, tmp_path: Path
) -> None:
    parts = bad_parts(fraud, tmp_path / "parts")
    out = tmp_path / "scores.parquet"
    done = score(fraud.lightgbm, "-i", parts, "-o", out, "--schema", fraud.schema, "--partial",
                 "--batch-rows", "700")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 rows refused" in done.stderr
    scores = pq.read_table(out).column("score")
    assert len(scores) == 4000
    assert scores.null_count == 2
    assert scores[3001].as_py() is None
    assert scores[3002].as_py() is None
    problems = pd.read_csv(tmp_path / "scores.errors.csv")
    assert problems[["row", "pointer", "code"]].values.tolist() == [
        [3001, "/rows/3001/features/amount", "minimum"],
        [3002, "/rows/3002/features/merchant", "missing"],
    ]


def test_an_empty_input_gives_an_empty_output_with_every_column(
    fraud: FraudModels, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(fraud.parquet).slice(0, 0), empty)
    out = tmp_path / "scores.parquet"
    done = score(fraud.lightgbm, "-i", empty, "-o", out, "--schema", fraud.schema)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(out).column_names == ["label", "score", "warnings"]


def test_a_registered_model_by_name_and_version(
    fraud: FraudModels, module_database: str, tmp_path: Path
) -> None:
    with ConnectionPool(module_database, min_size=1, max_size=1, open=True) as pool:
        registry = ModelRegistry(pool, build)
        registry.register("card-fraud", fraud.lightgbm.read_bytes(), fraud.schema.read_text(),
                          thresholds=json.dumps(THRESHOLDS))  # fmt: skip
        registry.register("card-fraud", fraud.xgboost.read_bytes(), fraud.schema.read_text())
        registry.activate("card-fraud", 1)
    env = {"DATABASE_URL": module_database, "PATH": "/usr/bin:/bin"}
    out = tmp_path / "scores.parquet"
    done = score("card-fraud", "-i", fraud.parquet, "-o", out, env=env)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    np.testing.assert_allclose(
        table.column("score").to_numpy(), reference(fraud, fraud.frame()), atol=1e-9
    )
    assert "decision" in table.column_names
    done = score("card-fraud", "--version", "2", "-i", fraud.parquet, "-o", out, env=env)
    assert done.returncode == 0, done.stderr
    assert "decision" not in pq.read_table(out).column_names
    done = score("no-such-model", "-i", fraud.parquet, "-o", out, env=env)
    assert done.returncode == 1
    assert "'no-such-model' is neither a model file nor a registered model" in done.stderr


def peak_rss_kib(*args: str | Path) -> int:
    """The peak RSS of `ferroscore score ...`, run alone under a fresh parent."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "assert done.returncode == 0, done.stderr\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    cmd = [sys.executable, "-m", "ferroscore", "score", *map(str, args)]
    done = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_memory_stays_bounded_whatever_the_input_size(fraud: FraudModels, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    small_rows, big_rows = 200_000, 4_000_000
    big = pa.table(
        {
            "id": np.arange(big_rows),
            "amount": rng.uniform(0, 500, big_rows),
            "age": rng.integers(18, 90, big_rows),
            "merchant": pa.array(rng.choice(["fuel", "grocery", "online", "travel"], big_rows)),
            "card_present": rng.random(big_rows) < 0.5,
        }
    )
    pq.write_table(big, tmp_path / "big.parquet", row_group_size=100_000)
    pq.write_table(big.slice(0, small_rows), tmp_path / "small.parquet", row_group_size=100_000)
    # The big input in memory: over 120 MiB of columns, before any score.
    assert big.nbytes > 120 << 20
    peaks = {
        name: peak_rss_kib(fraud.lightgbm, "-i", tmp_path / f"{name}.parquet",
                           "-o", tmp_path / f"{name}-scores.parquet", "--schema", fraud.schema)
        for name in ("small", "big")
    }  # fmt: skip
    print(f"peak RSS (KiB): {peaks}")
    assert peaks["big"] - peaks["small"] < 48 << 10, peaks
    assert pq.ParquetFile(tmp_path / "big-scores.parquet").metadata.num_rows == big_rows


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux's script for a tty")
def test_a_terminal_gets_a_progress_bar(fraud: FraudModels, tmp_path: Path) -> None:
    command = " ".join(
        map(str, [sys.executable, "-m", "ferroscore", "score", fraud.lightgbm, "-i",
                  fraud.parquet, "-o", tmp_path / "s.parquet", "--schema", fraud.schema])
    )  # fmt: skip
    tty = {"TERM": "xterm", "COLUMNS": "160"}
    done = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                          text=True, timeout=120, env=tty)  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert "3000/3000" in done.stdout
    assert "100%" in done.stdout
    assert "rows/s" in done.stdout
