"""The offline examples, each run as a person runs it (`python examples/offline/with_*.py`) on
a small local cluster of its engine: every row scored, equal to the in-process scores."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

EXAMPLES = Path(__file__).parents[2] / "examples" / "offline"
sys.path.insert(0, str(EXAMPLES))

from applications import Job, prepare  # noqa: E402


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    return prepare(tmp_path_factory.mktemp("job"), rows=30_000, parts=3, trees=40)


def run(example: str, job: Job, out: Path) -> None:
    done = subprocess.run(
        [sys.executable, EXAMPLES / example, "--job", job.model.parent, "--out", out],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.parametrize(
    "example",
    [
        "with_dask.py",
        "with_ray.py",
        pytest.param(
            "with_spark.py",
            marks=pytest.mark.skipif(
                shutil.which("java") is None,
                reason="Spark needs a JVM: apt-get install default-jre-headless (.ci/run does)",
            ),
        ),
    ],
)
def test_example_scores_every_row_as_in_process(example: str, job: Job, tmp_path: Path) -> None:
    out = tmp_path / "scores"
    run(example, job, out)
    got = pq.read_table(out).sort_by("application_id")
    scorer = job.scorer()
    expected = scorer.score_arrow(pq.read_table(job.data)).sort_by("application_id")
    assert got.num_rows == expected.num_rows == 30_000
    assert got.column_names == expected.column_names
    for name in expected.column_names:
        assert (
            got.column(name).cast(expected.schema.field(name).type).equals(expected.column(name))
        ), name
