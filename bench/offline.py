"""Offline scoring side by side, in one run: rows/s per core of ferroscore in process
(`Model.predict` on NumPy, `Scorer.score` on Arrow with the schema checked), of the
`ferroscore score` CLI from Parquet to Parquet, and of the examples/offline jobs on Dask, Ray
and Spark; against LightGBM's own predict, in memory and as the same file-to-file job. Each
engine job is also run with a scorer that only passes the ids through, which is the engine's
own cost. Medians of repeated runs; writes bench/results/offline.md. Run: make bench-offline."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb
from timing import machine, quick_run, write_report

from ferroscore import Model
from ferroscore.scorer import Scorer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "offline"
sys.path.insert(0, str(EXAMPLES))

import applications  # noqa: E402

CORES = os.cpu_count() or 1


# Defined in the job's own `__main__`, so that the engines ship it to their workers by value.
PASSTHROUGH = """
import pyarrow as pa

class Passthrough:
    def output_schema(self, data):
        return pa.schema([data.field("application_id")])

    def score_arrow(self, data):
        return pa.table({"application_id": data.column("application_id")})

    def score_batches(self, batches):
        for b in batches:
            yield from self.score_arrow(b).to_batches()

    def score_pandas(self, frame):
        return frame[["application_id"]]
"""


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.unlink(missing_ok=True)
    return path


def main() -> None:
    quick = quick_run(__doc__)
    rows, repeats = (20_000, 1) if quick else (2_000_000, 3)
    work = Path(tempfile.mkdtemp(prefix="ferroscore-offline-"))
    try:
        report = run(work, rows, repeats, engines=not quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(write_report("offline.md", report))


def run(work: Path, rows: int, repeats: int, engines: bool) -> list[str]:
    job = applications.prepare(work / "job", rows=rows, parts=8)
    scorer = job.scorer(explain=0)
    table = pq.read_table(job.data)
    frame = table.to_pandas()
    features = frame[list(scorer.features)]
    booster = lgb.Booster(model_file=str(job.model))
    one = Scorer(job.model, job.schema.read_text(), job.thresholds.read_text(), threads=1)
    x = features.assign(
        region=frame["region"].cat.codes.astype(float).where(frame["region"].notna()),
        employment=frame["employment"].cat.codes.astype(float),
        has_mortgage=frame["has_mortgage"].astype(float),
    ).to_numpy(float)

    measured: list[tuple[str, int, float, str]] = []

    def measure(name: str, cores: int, fn: Callable[[], object], note: str = "") -> float:
        seconds = median_seconds(fn, repeats)
        measured.append((name, cores, seconds, note))
        return seconds

    measure("LightGBM `Booster.predict`, pandas in memory", 1,
            lambda: booster.predict(features, num_threads=1))  # fmt: skip
    measure("ferroscore `Model.predict`, NumPy in memory", 1,
            lambda: scorer.model.predict(x, parallel=False))  # fmt: skip
    measure("ferroscore `Scorer.score`, Arrow in memory, schema checked", 1,
            lambda: one.score(table))  # fmt: skip

    # The same data through an XGBoost model: its own predict against ours, one core each.
    booster_x = (
        xgb.XGBClassifier(
            n_estimators=100, max_depth=6, enable_categorical=True, max_cat_to_onehot=1, nthread=1
        )
        .fit(features, frame["defaulted"])
        .get_booster()
    )
    booster_x.save_model(work / "xgb.json")
    ours_x = Model.load(work / "xgb.json")
    xgb_lines = [
        measure_line("XGBoost `inplace_predict`, pandas in memory", repeats,
                     lambda: booster_x.inplace_predict(features)),
        measure_line("ferroscore `Model.predict`, NumPy in memory", repeats,
                     lambda: ours_x.predict(x, parallel=False)),
    ]  # fmt: skip

    out = work / "out.parquet"

    def lightgbm_job() -> None:
        data = pq.read_table(job.data).to_pandas()
        score = booster.predict(data[list(scorer.features)], num_threads=1)
        pq.write_table(pa.table({"application_id": data["application_id"], "score": score}),
                       fresh(out))  # fmt: skip

    measure("LightGBM: read Parquet, predict, write Parquet", 1, lightgbm_job)
    cli = [sys.executable, "-m", "ferroscore", "score", str(job.model), "-i", str(job.data),
           "-o", str(out), "--schema", str(job.schema), "--thresholds", str(job.thresholds),
           "--key", "application_id"]  # fmt: skip
    for threads in sorted({1, CORES}):
        measure(f"`ferroscore score` CLI, Parquet to Parquet, --threads {threads}", threads,
                lambda t=threads: subprocess.run([*cli, "--threads", str(t)], check=True,
                                                 capture_output=True),
                "includes the interpreter's start")  # fmt: skip
    if engines:
        for name, module in (("Dask", "with_dask"), ("Ray Data", "with_ray"),
                             ("Spark", "with_spark")):  # fmt: skip
            if name == "Spark" and shutil.which("java") is None:
                continue
            passthrough = engine_seconds(module, job, work, passthrough=True)
            measure(f"{name}: examples/offline/{module}.py", CORES,
                    lambda m=module: engine_seconds(m, job, work, passthrough=False),
                    f"the engine alone (ids passed through): {passthrough:.1f} s")  # fmt: skip
    return render(measured, rows, repeats, xgb_lines)


def measure_line(name: str, repeats: int, fn: Callable[[], object]) -> tuple[str, float]:
    return name, median_seconds(fn, repeats)


def engine_seconds(module: str, job: Any, work: Path, *, passthrough: bool) -> float:
    """Seconds of one example's job in a fresh interpreter (engines keep global state), with
    the job's scorer or the passthrough."""
    code = (
        f"import sys, time\nfrom pathlib import Path\nsys.path.insert(0, {str(EXAMPLES)!r})\n"
        f"import {module}, applications\n{PASSTHROUGH}\n"
        "job = applications.Job.at(Path(sys.argv[1]))\n"
        "scorer = Passthrough() if sys.argv[2] == 'yes' else job.scorer(explain=0)\n"
        "start = time.perf_counter()\n"
        f"{module}.score(job, Path(sys.argv[3]), scorer=scorer)\n"
        "print(time.perf_counter() - start)\n"
    )
    out = fresh(work / f"{module}-out")
    done = subprocess.run(
        [sys.executable, "-c", code, str(job.model.parent), "yes" if passthrough else "no",
         str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def render(
    measured: list[tuple[str, int, float, str]],
    rows: int,
    repeats: int,
    xgb_lines: list[tuple[str, float]],
) -> list[str]:
    def rate_of(prefix: str) -> float:
        return next(rows / s for name, _, s, _ in measured if name.startswith(prefix))

    lightgbm, ours = rate_of("LightGBM `"), rate_of("ferroscore `Model.predict`")
    lines = [
        "# Offline scoring: ferroscore vs LightGBM, in process, from the CLI, on engines",
        "",
        f"Machine: {machine()}; lightgbm {lgb.__version__}, xgboost {xgb.__version__},",
        f"pyarrow {pa.__version__}. {rows:,} loan applications (7 features, 2 categorical, 4%",
        "missing incomes) in 8 Parquet parts; LightGBM, 100 trees of 31 leaves. Median of",
        f"{repeats} runs per line; per core = rows/s divided by the cores the job had.",
        "",
        "| job | cores | seconds | rows/s | rows/s per core | per core ÷ LightGBM predict"
        " | per core ÷ ferroscore `Model.predict` | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, cores, seconds, note in measured:
        per_core = rows / seconds / cores
        lines.append(
            f"| {name} | {cores} | {seconds:.2f} | {rows / seconds:,.0f} | {per_core:,.0f} |"
            f" {per_core / lightgbm:.2f}x | {per_core / ours:.2f}x | {note} |"
        )
    theirs = xgb_lines[0][1]
    lines += [
        "",
        "The same rows through an XGBoost model (100 trees, depth 6, the two categorical",
        "features split by category sets), one core each:",
        "",
        "| job | seconds | rows/s | ÷ XGBoost |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in xgb_lines:
        lines.append(
            f"| {name} | {seconds:.2f} | {rows / seconds:,.0f} | {theirs / seconds:.2f}x |"
        )
    return lines


if __name__ == "__main__":
    main()
