"""`ferroscore score`: a model file or a registered model scoring Parquet or CSV files offline,
with the service's schema rules and a progress bar on a terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ferroscore._core import FerroscoreError, Model, ValidationError
from ferroscore.cli.common import counted
from ferroscore.models.registry import DEFAULT_TENANT, Artifact


@click.command()
@click.argument("model")
@click.option(
    "--input", "-i", "source", required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Parquet or CSV: a file, or a directory of them",
)  # fmt: skip
@click.option(
    "--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="the scores: Parquet, or CSV when the name ends in .csv",
)  # fmt: skip
@click.option(
    "--schema", "schema_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the input schema [default: the registered version's, or the model's open schema]",
)  # fmt: skip
@click.option(
    "--thresholds", "thresholds_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="decision thresholds [default: the registered version's, or none]",
)  # fmt: skip
@click.option("--version", "version", type=int, help="a registered version [default: the active]")
@click.option(
    "--labels", help="the class labels, comma-separated: a `label` column and each class's "
    "score by label [default: the registered version's, or none]",
)  # fmt: skip
@click.option("--explain", type=click.IntRange(min=0), default=0, help="reasons per row")
@click.option(
    "--key", "keys", multiple=True,
    help="an input column to carry into the output (repeat) [default: every non-feature column]",
)  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), help="scoring threads [default: all cores]")
@click.option("--partial", is_flag=True, help="score the valid rows; list the others' problems")
@click.option(
    "--errors", "errors_path", type=click.Path(dir_okay=False, path_type=Path),
    help="with --partial: where the problems go [default: <output stem>.errors.csv]",
)  # fmt: skip
@click.option("--batch-rows", type=click.IntRange(min=1), default=65_536, show_default=True)
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True,
              help="the tenant whose registered model MODEL names")  # fmt: skip
def score(
    model: str, source: Path, output: Path, schema_path: Path | None,
    thresholds_path: Path | None, version: int | None, labels: str | None, explain: int,
    keys: tuple[str, ...],
    threads: int | None, partial: bool, errors_path: Path | None, batch_rows: int, tenant: str,
) -> None:  # fmt: skip
    """Score Parquet or CSV files with MODEL: a model file, or the name of a registered model
    (read from DATABASE_URL's registry, or the embedded database's).

    Writes the input's key columns, the score(s), the decision (with thresholds) and the top
    reasons (with --explain). A row that breaks the schema stops the run with its row number
    and JSON Pointer, unless --partial."""
    import pyarrow as pa

    from ferroscore.models.inference import open_schema
    from ferroscore.offline.files import count_rows, input_files, input_schema, run
    from ferroscore.offline.scorer import Scorer

    if threads is not None:
        pa.set_cpu_count(threads)
    artifact = _artifact(model, version, tenant)
    thresholds = thresholds_path.read_text() if thresholds_path else artifact.thresholds
    console = Console(stderr=True)
    try:
        files = input_files(source)
        schema = schema_path.read_text() if schema_path else artifact.input_schema
        if not schema:
            schema = json.dumps(open_schema(Model.load(artifact.artifact), input_schema(files)))
        scorer = Scorer(
            artifact.artifact, schema, thresholds, explain=explain,
            keep=keys or None, threads=threads, name=artifact.name, version=artifact.version,
            labels=labels.split(",") if labels else artifact.labels,
        )  # fmt: skip
        total = count_rows(files)
        with _progress(console) as bar:
            task = bar.add_task("scoring", total=total)
            summary = run(
                scorer, source, output, partial=partial, errors=errors_path, batch_rows=batch_rows,
                progress=lambda n: bar.advance(task, n),
            )  # fmt: skip
    except ValidationError as e:
        raise click.ClickException(f"refused: {e}") from None
    except (FerroscoreError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    line = (f"scored {counted(summary.rows, 'row')} in {summary.seconds:.2f} s"
            f" ({rate:,.0f} rows/s) -> {output}")  # fmt: skip
    if summary.errors is not None:
        line += f"; {counted(summary.refused, 'row')} refused, their problems in {summary.errors}"
    console.print(line, highlight=False, soft_wrap=True)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text("" if task.speed is None else f"{task.speed:,.0f} rows/s")


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TaskProgressColumn(), _Rate(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, disable=not console.is_terminal,
    )  # fmt: skip


def _artifact(model: str, version: int | None, tenant: str) -> Artifact:
    """A model file as an unregistered artifact, or a registered version from the registry."""
    path = Path(model)
    if path.is_file():
        if version is not None:
            raise click.UsageError("--version names a registered version, not a file's")
        return Artifact(DEFAULT_TENANT, path.stem, 0, None, path.read_bytes(), "", None)
    return _registered(model, version, tenant)


def _registered(name: str, version: int | None, tenant: str) -> Artifact:
    from psycopg_pool import ConnectionPool

    from ferroscore.cli.serve import database_url
    from ferroscore.config import ConfigError, Settings
    from ferroscore.models.registry import ModelRegistry, RegistryError, check_name
    from ferroscore.offline.scorer import Scorer

    def build(a: Artifact) -> Any:
        return Scorer(a.artifact, a.input_schema, a.thresholds).endpoint

    try:
        check_name(name)
        settings = Settings.from_env()
        conninfo = database_url(settings)
        with ConnectionPool(conninfo, min_size=1, max_size=1, open=True,
                            **settings.pool_options()) as pool:  # fmt: skip
            registry = ModelRegistry(pool, build, tenant)
            if version is None:
                version = int(registry.status(name)["active_version"])
            return registry.artifact(name, version)
    except RegistryError as e:
        raise click.ClickException(
            f"{name!r} is neither a model file nor a registered model ({e.message})"
        ) from None
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from None
