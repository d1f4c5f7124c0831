"""The development key of `make serve`: on the embedded database only, the first start
creates an API key of the `default` tenant with every scope and keeps its token in
`<data dir>/dev-key` (mode 0600), so that the docs' curl lines and the CLI work as
written. A server on `DATABASE_URL` never makes one: there, every key is made by
`ferroscore keys create`."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from ferroscore.access import keys
from ferroscore.models.registry import DEFAULT_TENANT

FILE = "dev-key"


def read_dev_key(data_dir: Path) -> str | None:
    """The development key's token, if `data_dir` holds one."""
    try:
        return (data_dir / FILE).read_text().strip() or None
    except OSError:
        return None


def ensure_dev_key(conninfo: str, data_dir: Path) -> str:
    """The development key's token: the one in `data_dir` while it is valid, else a new one."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        token = read_dev_key(data_dir)
        if token is not None and keys.find(conn, token) is not None:
            return token
        token, _ = keys.create(conn, DEFAULT_TENANT, keys.SCOPES,
                               description="development key of the embedded database")  # fmt: skip
    path = data_dir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
