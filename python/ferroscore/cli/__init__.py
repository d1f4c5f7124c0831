"""The `ferroscore` command: `serve` and `migrate` run the service; `models ...` drive a running
server's lifecycle API; `schema infer` writes a model's input schema from its training data;
`score` scores files offline; `decisions` exports the decision log and charts drift; `config`
prints the settings table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ferroscore._core import FerroscoreError, Model, __version__
from ferroscore.cli.client import Client
from ferroscore.cli.common import console, json_option, load_settings, run, show, url_option
from ferroscore.cli.decisions import decisions
from ferroscore.cli.keys import keys
from ferroscore.cli.score import score
from ferroscore.config import markdown_table


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ferroscore")
def cli() -> None:
    """Real-time model scoring: serve models, manage their versions, infer their schemas, score
    files offline."""


@cli.command()
@click.option("--host", help="overrides FERROSCORE_HOST")
@click.option("--port", type=int, help="overrides FERROSCORE_PORT")
@click.option("--processes", type=int, help="overrides FERROSCORE_PROCESSES")
@click.option("--workers", type=int, help="overrides FERROSCORE_WORKERS")
@click.option("--hooks", help="overrides FERROSCORE_HOOKS: the module of your hooks")
def serve(
    host: str | None, port: int | None, processes: int | None, workers: int | None,
    hooks: str | None,
) -> None:  # fmt: skip
    """Serve the active models over HTTP."""
    from ferroscore.processes.lifecycle import block_stop_signals

    # Before anything starts a thread: numpy's OpenBLAS starts its own at import, and a
    # thread that does not block SIGTERM would let Robyn take it.
    block_stop_signals()
    from ferroscore.cli.serve import serve as serve_until_stopped

    settings = load_settings(host=host, port=port, processes=processes, workers=workers,
                             hooks=hooks)  # fmt: skip
    sys.exit(serve_until_stopped(settings))


@cli.command()
def migrate() -> None:
    """Apply the database migrations and exit."""
    from ferroscore.cli.serve import migrate_only

    sys.exit(migrate_only(load_settings()))


@cli.command()
@click.option("--markdown", is_flag=True, help="as a Markdown table (the docs' configuration page)")
def config(markdown: bool) -> None:
    """Every setting: variable, default, bounds, meaning, and (without --markdown) its value."""
    if markdown:
        click.echo(markdown_table(), nl=False)
        return
    from ferroscore.config import SETTINGS

    settings = load_settings()
    table = Table("variable", "value", "default", "meaning")
    for s in SETTINGS:
        table.add_row(s.env, str(getattr(settings, s.field)), s.shown_default(), s.meaning)
    console().print(table)


# -- models -----------------------------------------------------------------------------------


@cli.group()
def models() -> None:
    """Push, list, activate, shadow, roll back and delete model versions on a server."""


@models.command("list")
@url_option
@json_option
def models_list(url: str, as_json: bool) -> None:
    """Every model with its active, shadow and latest versions."""
    found = run(url, lambda c: c.get("/v1/registry"))["models"]
    cols = ["name", "active_version", "shadow_version", "shadow_share", "latest_version"]
    show(found, as_json, cols)


@models.command("versions")
@click.argument("name")
@url_option
@json_option
def models_versions(name: str, url: str, as_json: bool) -> None:
    """Every version of NAME."""
    found = run(url, lambda c: c.get(f"/v1/models/{name}/versions"))["versions"]
    cols = ["version", "active", "shadow", "format", "n_features", "objective", "created_at",
            "sha256"]  # fmt: skip
    show(found, as_json, cols)


@models.command("push")
@click.argument("name")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--schema",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the input schema (JSON)",
)
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    help="training data (Parquet or CSV) to infer the schema and profile from",
)
@click.option(
    "--thresholds",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="decision thresholds (JSON list)",
)
@click.option(
    "--profile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the reference profile `schema infer --profile` wrote (with --schema; --data infers it)",
)
@click.option(
    "--labels", help="the class labels, comma-separated, one per class in the model's order "
    "(two for a model of one probability: the negative class first)",
)  # fmt: skip
@click.option(
    "--target", help="with --data: the data's label column, whose classes are the labels (a "
    "categorical column's order, else sorted)",
)  # fmt: skip
@click.option("--metadata", help="metadata (a JSON object)")
@click.option("--activate", is_flag=True, help="serve the new version at once")
@click.option(
    "--force",
    is_flag=True,
    help="a new version even when NAME has one with this artifact, schema and thresholds",
)
@url_option
@json_option
def models_push(
    name: str, model: Path, schema: Path | None, data: Path | None, thresholds: Path | None,
    profile: Path | None, labels: str | None, target: str | None, metadata: str | None,
    activate: bool, force: bool, url: str, as_json: bool,
) -> None:  # fmt: skip
    """Register MODEL (a file) as a new version of NAME. Pushed again with the same schema
    and thresholds, it is the version that has them (`existing` true), unless --force."""
    if (schema is None) == (data is None):
        raise click.UsageError("give exactly one of --schema and --data")
    if profile is not None and data is not None:
        raise click.UsageError("--data infers the profile: give --profile with --schema")
    if target is not None and (data is None or labels is not None):
        raise click.UsageError("--target reads the labels from --data: give one of --labels "
                               "and --data ... --target")  # fmt: skip
    artifact = model.read_bytes()
    fields: dict[str, bytes] = {}
    if force:
        fields["force"] = b"true"
    if profile is not None:
        fields["profile"] = profile.read_bytes()
    if schema is not None:
        fields["schema"] = schema.read_bytes()
    else:
        assert data is not None
        from ferroscore.models.inference import (
            Options,
            class_labels,
            infer_schema,
            read_table,
            reference_profile,
        )

        try:
            loaded = Model.load(artifact)
            table = read_table(data)
            if target is not None:
                fields["labels"] = json.dumps(class_labels(table, target)).encode()
            options = Options(exclude=(target,) if target else ())
            inferred = infer_schema(loaded, table, options, artifact=artifact)
            fields["schema"] = json.dumps(inferred).encode()
            fields["profile"] = json.dumps(reference_profile(loaded, inferred, table)).encode()
        except (FerroscoreError, ValueError, OSError) as e:
            raise click.ClickException(f"cannot infer the schema: {e}") from None
    if thresholds is not None:
        fields["thresholds"] = thresholds.read_bytes()
    if metadata is not None:
        fields["metadata"] = metadata.encode()
    if labels is not None:
        fields["labels"] = json.dumps([x.strip() for x in labels.split(",")]).encode()

    def push(c: Client) -> Any:
        created = c.upload(f"/v1/models/{name}/versions", model.name, artifact, fields)
        if activate:
            c.post(f"/v1/models/{name}/versions/{created['version']}/activate")
            created["active"] = True
        return created

    created = run(url, push)
    cols = ["name", "version", "existing", "active", "format", "n_features", "objective",
            "sha256"]  # fmt: skip
    show(created, as_json, cols)


def _status(url: str, as_json: bool, call: Any) -> None:
    status = run(url, call)
    shadow = status.get("shadow") or {}
    row = {
        "name": status["name"],
        "active_version": status["active_version"],
        "previous_version": status["previous_version"],
        "shadow_version": shadow.get("version"),
        "shadow_share": shadow.get("share"),
    }
    show(status if as_json else row, as_json)


@models.command("activate")
@click.argument("name")
@click.argument("version", type=int)
@url_option
@json_option
def models_activate(name: str, version: int, url: str, as_json: bool) -> None:
    """Serve VERSION of NAME."""
    _status(url, as_json, lambda c: c.post(f"/v1/models/{name}/versions/{version}/activate"))


@models.command("rollback")
@click.argument("name")
@url_option
@json_option
def models_rollback(name: str, url: str, as_json: bool) -> None:
    """Step NAME back one activation: serve again the version active before the current one.
    Each rollback goes one further back (the last 100 activations are kept); it never
    toggles between two versions."""
    _status(url, as_json, lambda c: c.post(f"/v1/models/{name}/rollback"))


@models.command("shadow")
@click.argument("name")
@click.argument("version", type=int, required=False)
@click.option(
    "--share",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="the share of requests the shadow version scores",
)
@click.option("--off", is_flag=True, help="stop the shadow")
@url_option
@json_option
def models_shadow(
    name: str, version: int | None, share: float, off: bool, url: str, as_json: bool
) -> None:
    """Score VERSION of NAME beside the active one, on a share of requests (or --off)."""
    if off:
        _status(url, as_json, lambda c: c.delete(f"/v1/models/{name}/shadow"))
        return
    if version is None:
        raise click.UsageError("give the VERSION to shadow, or --off")
    body = {"version": version, "share": share}
    _status(url, as_json, lambda c: c.put(f"/v1/models/{name}/shadow", body))


@models.command("delete")
@click.argument("name")
@click.argument("version", type=int)
@url_option
def models_delete(name: str, version: int, url: str) -> None:
    """Delete an inactive VERSION of NAME."""
    run(url, lambda c: c.delete(f"/v1/models/{name}/versions/{version}"))
    click.echo(f"deleted {name} v{version}")


# -- schema -----------------------------------------------------------------------------------


@cli.group()
def schema() -> None:
    """Input schemas."""


@schema.command("infer")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="training data: Parquet (file or directory) or CSV",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="widen each numeric range by this share of it on each side",
)
@click.option("--open-bounds", is_flag=True, help="no range at all")
@click.option(
    "--strict",
    is_flag=True,
    help="refuse what the data never showed: the ranges as hard minimum/maximum (a value "
    "outside is a 422) and unseen categories refused; without it, a value outside its "
    "training range, or an unseen category, is scored with a warning",
)
@click.option(
    "--unknown-category",
    type=click.Choice(["missing", "error"]),
    default=None,
    help="what an unseen category does [default: missing; error with --strict]",
)
@click.option("--exclude", multiple=True, help="a data column that is not an input (repeat)")
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write the reference profile (feature and score distributions) here",
)
def schema_infer(
    model: Path, data: Path, margin: float, open_bounds: bool, strict: bool,
    unknown_category: str | None, exclude: tuple[str, ...], profile: Path | None,
) -> None:  # fmt: skip
    """Print the input schema of MODEL inferred from its training data."""
    from ferroscore.models.inference import Options, infer_schema, read_table, reference_profile

    options = Options(
        margin=None if open_bounds else margin,
        hard_bounds=strict,
        unknown_category=unknown_category or ("error" if strict else "missing"),
        exclude=exclude,
    )
    try:
        artifact = model.read_bytes()
        loaded = Model.load(artifact)
        table = read_table(data)
        inferred = infer_schema(loaded, table, options, artifact)
        if profile is not None:
            profile.write_text(json.dumps(reference_profile(loaded, inferred, table)))
    except (FerroscoreError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(inferred, indent=2))


cli.add_command(score)
cli.add_command(keys)
cli.add_command(decisions)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns its exit status."""
    try:
        cli.main(args=argv, prog_name="ferroscore", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        return 130
    return 0
