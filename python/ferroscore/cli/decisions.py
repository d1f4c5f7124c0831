"""`ferroscore decisions export | drift`: the decision log as a Parquet file, straight from the
database (DATABASE_URL, or the embedded one); a model's drift over time as a chart, from a
running server's monitoring route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from ferroscore.cli.common import console, counted, json_option, run, url_option
from ferroscore.cli.database import with_database
from ferroscore.decisionlog.rows import FEATURES

#: Rows fetched (and written as one Parquet row group) at a time.
EXPORT_BATCH = 50_000
_COLUMNS = (
    "request_id, row_index, tenant, model, version, role, decision, reference, created_at,"
    f" score, ({FEATURES})::text"
)
#: PSI at which a bar turns red (as the monitoring route marks a feature drifted).
_ALERT = 0.2
_BAR = 30


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=name) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@click.group()
def decisions() -> None:
    """Export the decision log; chart a model's drift."""


@decisions.command("export")
@click.option("--since", help="decisions made at or after this time (ISO 8601; UTC if no offset)")
@click.option("--until", help="decisions made before this time")
@click.option("--model", help="only this model's decisions")
@click.option("--tenant", help="only this tenant's decisions")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the Parquet file to write")  # fmt: skip
def export(
    since: str | None, until: str | None, model: str | None, tenant: str | None, output: Path
) -> None:
    """Write the decision log (a window of it) to a Parquet file, with a progress bar."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where, args = ["true"], []
    for column, op, value in (("created_at", ">=", _when(since, "--since")),
                              ("created_at", "<", _when(until, "--until")),
                              ("model", "=", model), ("tenant", "=", tenant)):  # fmt: skip
        if value is not None:
            where.append(f"{column} {op} %s")
            args.append(value)
    condition = " AND ".join(where)
    schema = pa.schema([
        ("request_id", pa.string()), ("row_index", pa.int32()), ("tenant", pa.string()),
        ("model", pa.string()), ("version", pa.int32()), ("role", pa.string()),
        ("decision", pa.string()), ("reference", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")), ("scores", pa.list_(pa.float64())),
        ("features", pa.string()),
    ])  # fmt: skip

    def work(conn: psycopg.Connection[Any]) -> int:
        counted = conn.execute(f"SELECT count(*) FROM decisions WHERE {condition}", args)
        total = int((counted.fetchone() or (0,))[0])
        written = 0
        columns = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                           TimeRemainingColumn(), console=console())  # fmt: skip
        with (
            columns as progress,
            pq.ParquetWriter(output, schema) as writer,
            conn.transaction(),
            conn.cursor(name="ferroscore_export") as cur,
        ):
            task = progress.add_task(f"exporting to {output}", total=total)
            cur.execute(
                f"SELECT {_COLUMNS} FROM decisions d WHERE {condition}"
                " ORDER BY created_at, request_id, row_index, model, version",
                args,
            )
            while rows := cur.fetchmany(EXPORT_BATCH):
                batch = pa.Table.from_arrays(
                    [pa.array(column, type=f.type) for column, f in zip(zip(*rows, strict=True),
                                                                       schema, strict=True)],
                    schema=schema,
                )  # fmt: skip
                writer.write_table(batch)
                written += len(rows)
                progress.update(task, completed=written)
        return written

    written = with_database(work)
    click.echo(f"{counted(written, 'decision row')} written to {output}")


@decisions.command("drift")
@click.argument("model")
@click.option("--version", type=int, help="the version (default: the active one)")
@click.option("--days", type=click.IntRange(1, 3650), default=7, show_default=True,
              help="how far back the chart goes")  # fmt: skip
@click.option("--bucket", type=click.Choice(["day", "hour"]), default="day", show_default=True)
@url_option
@json_option
def drift(model: str, version: int | None, days: int, bucket: str, url: str, as_json: bool) -> None:
    """Chart MODEL's drift over time: the PSI of its score and of its most drifted features,
    per day (or hour), against the profile captured when the version was registered."""
    import json

    since = quote((datetime.now(UTC) - timedelta(days=days)).isoformat())
    query = f"since={since}&bucket={bucket}" + (f"&version={version}" if version else "")
    report = run(url, lambda c: c.get(f"/v1/models/{model}/monitoring?{query}"))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    out = console()
    if report["reference"] is None:
        out.print(f"{model} v{report['version']} was registered without a profile (push it with"
                  " --data): no drift to chart")  # fmt: skip
        return
    window = report["window"]
    if window["status"] == "insufficient_data":
        out.print(f"{model} v{report['version']}: insufficient data — {window['rows']} logged"
                  f" rows in the window, fewer than the {window['min_rows']} a PSI needs"
                  " (FERROSCORE_DRIFT_MIN_ROWS)")  # fmt: skip
    ranked = sorted(report["features"].items(), key=lambda kv: -(kv[1]["psi"] or 0))
    top = [name for name, _ in ranked[:3]]
    chart = Table("start", "rows", "score PSI", *(f"{n} PSI" for n in top),
                  title=f"{model} v{report['version']}: drift per {bucket}")  # fmt: skip
    for point in report["series"]:
        if point["status"] == "insufficient_data":
            chart.add_row(point["start"][: 16 if bucket == "hour" else 10], str(point["rows"]),
                          *(["insufficient data"] * (1 + len(top))))  # fmt: skip
            continue
        cells = [_bar(point["score_psi"])]
        cells += [_bar(point["features_psi"].get(n)) for n in top]
        chart.add_row(point["start"][: 16 if bucket == "hour" else 10], str(point["rows"]), *cells)
    out.print(chart)
    summary = Table("feature", "PSI", "missing", "reference missing", "warnings",
                    title=f"over the window ({report['window']['rows']} rows)")  # fmt: skip
    for name, f in ranked:
        warned = ", ".join(f"{n} {code}" for code, n in sorted(f.get("warnings", {}).items()))
        summary.add_row(name, _bar(f["psi"]), _rate(f.get("missing_rate")),
                        _rate(f.get("reference_missing_rate")), warned)  # fmt: skip
    out.print(summary)
    outcomes = report["outcomes"]
    if outcomes["rows"]:
        auc = "n/a" if outcomes["auc"] is None else f"{outcomes['auc']:.4f}"
        out.print(f"outcomes: {outcomes['rows']} rows, AUC {auc}, "
                  f"log-loss {outcomes['log_loss']:.4f}")  # fmt: skip


def _bar(psi: float | None) -> str:
    if psi is None:
        return ""
    filled = min(_BAR, round(psi / (2 * _ALERT) * _BAR))
    colour = "red" if psi > _ALERT else "green"
    return f"[{colour}]{'█' * filled}[/{colour}] {psi:.3f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"
