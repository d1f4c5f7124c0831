"""What the commands share: the settings, the server they talk to (URL, key) and the
console they print on."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ferroscore.cli.client import ApiError, Client
from ferroscore.config import ConfigError, Settings
from ferroscore.observability.logs import configure

DEFAULT_URL = "http://127.0.0.1:8000"


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from None
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    configure(settings.log_level, settings.log_format)
    return settings


url_option = click.option(
    "--url", envvar="FERROSCORE_URL", default=DEFAULT_URL, show_default=True,
    help="the server's base URL (or FERROSCORE_URL)",
)  # fmt: skip
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON, for scripts")


def api_key() -> str | None:
    """FERROSCORE_API_KEY, else the development key `ferroscore serve` made for its embedded
    database (in FERROSCORE_DATA_DIR), if there is one."""
    import os

    from ferroscore.access.devkey import read_dev_key

    return os.environ.get("FERROSCORE_API_KEY") or read_dev_key(load_settings().data_dir)


def run(url: str, call: Any) -> Any:
    try:
        return call(Client(url, api_key()))
    except ApiError as e:
        raise click.ClickException(str(e)) from None


def show(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    cols = columns or (list(rows[0]) if rows else [])
    table = Table(*cols)
    for r in rows:
        table.add_row(*(_cell(c, r.get(c)) for c in cols))
    console().print(table)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "sha256":
        return str(value)[:12]
    if column == "created_at":
        return str(value)[:19].replace("T", " ")
    return str(value)


def console() -> Console:
    # Piped output is not cut at 80 columns.
    console = Console()
    return console if console.is_terminal else Console(width=200)


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1: "1 row", "2 rows"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
