"""`ferroscore keys create | list | revoke`: API keys, straight in the database (DATABASE_URL,
or the embedded one), as the operator who runs the service manages them."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from ferroscore.access import keys as store
from ferroscore.cli.database import with_database

T = TypeVar("T")


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--tenant", required=True, help="the tenant whose models the key reaches")
@click.option(
    "--scopes",
    default="score",
    show_default=True,
    help=f"comma-separated, of {', '.join(store.SCOPES)} (admin implies read)",
)
@click.option("--rate", help="the key's rate limit: 500/s, 30000/min, 100/h [default: none]")
@click.option(
    "--burst",
    type=click.IntRange(min=1),
    help="requests at once above the rate [default: a tenth of a second's]",
)
@click.option("--expires", help="lifetime: 90d, 12h, 2w [default: never]")
@click.option("--description", default="", help="what the key is for")
@click.option("--json", "as_json", is_flag=True, help="print JSON, for scripts")
def create(
    tenant: str, scopes: str, rate: str | None, burst: int | None, expires: str | None,
    description: str, as_json: bool,
) -> None:  # fmt: skip
    """Create a key and print its token: it is shown this once, and only its hash is kept."""
    try:
        rate_per_s = store.parse_rate(rate) if rate else None
        lifetime = store.parse_duration(expires) if expires else None
        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        token, key = with_database(
            lambda conn: store.create(
                conn,
                tenant,
                wanted,
                rate_per_s=rate_per_s,
                burst=burst,
                expires_in=lifetime,
                description=description,
            )
        )
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    if as_json:
        click.echo(json.dumps({"token": token, **_row(key)}, indent=2))
        return
    click.echo(token)
    Console(stderr=True).print(
        f"key {key.id} of tenant {key.tenant!r}, scopes {', '.join(key.scopes)}: store the "
        "token now, it cannot be shown again", highlight=False,
    )  # fmt: skip


@keys.command("list")
@click.option("--tenant", help="only this tenant's keys")
@click.option("--json", "as_json", is_flag=True, help="print JSON, for scripts")
def list_keys(tenant: str | None, as_json: bool) -> None:
    """Every key (never its token): id, tenant, scopes, rate, expiry, revocation."""
    found = [_row(k) for k in with_database(lambda conn: store.listed(conn, tenant))]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    columns = ["id", "tenant", "scopes", "rate", "created_at", "expires_at", "revoked_at",
               "description"]  # fmt: skip
    table = Table(*columns)
    for row in found:
        table.add_row(*(str(row[c] if row[c] is not None else "") for c in columns))
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke the key KEY_ID: every serving process refuses it within seconds."""
    if not with_database(lambda conn: store.revoke(conn, key_id)):
        raise click.ClickException(f"no live key {key_id!r}")
    click.echo(f"revoked {key_id}")


def _row(key: store.Key) -> dict[str, Any]:
    def at(t: Any) -> str | None:
        return t.isoformat(timespec="seconds") if t is not None else None

    rate = None
    if key.rate_per_s is not None:
        rate = f"{key.rate_per_s:g}/s" + (f" (burst {key.burst})" if key.burst else "")
    return {"id": key.id, "tenant": key.tenant, "scopes": ",".join(key.scopes), "rate": rate,
            "created_at": at(key.created_at), "expires_at": at(key.expires_at),
            "revoked_at": at(key.revoked_at), "description": key.description}  # fmt: skip
