"""What every benchmark here shares: one way to time a call, to describe the machine, to
write a report, and the demo endpoint they measure."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from ferroscore import Endpoint, Model

RESULTS = Path(__file__).resolve().parent / "results"


def demo_endpoint() -> Endpoint:
    """The bundled demo model behind its schema, as the service serves it."""
    demo = resources.files("ferroscore.demo")
    model = Model.load(demo.joinpath("model.json").read_bytes())
    return Endpoint("demo", 1, model, demo.joinpath("schema.json").read_text())


def quick_run(doc: str | None) -> bool:
    """Parses a benchmark's command line, which has one flag: whether `--quick` asks for a
    smoke run with few repeats."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    quick: bool = parser.parse_args().quick
    return quick


def per_call_us(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Median over `repeats` of the mean time of one call, in microseconds."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls / 1000)
    return statistics.median(samples)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_report(name: str, lines: list[str]) -> str:
    """Writes bench/results/<name> and returns its text."""
    report = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(report)
    return report
