"""The model registry in PostgreSQL: immutable numbered versions of each model, one of them
active, and the served `Endpoint`s built from the active versions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import psycopg

from ferroscore._core import Endpoint, Model

DEMO_MODEL = "breast-cancer"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as stored."""

    name: str
    version: int
    format: str | None
    artifact: bytes
    input_schema: str


class ModelRegistry:
    """Registers, activates and loads model versions."""

    def __init__(self, conninfo: str, *, limits: Mapping[str, int] | None = None) -> None:
        """`limits` are `Endpoint`'s keyword arguments (see `Settings.limits`)."""
        self._conninfo = conninfo
        self._limits = dict(limits or {})

    def register(
        self, name: str, artifact: bytes, input_schema: str, *, fmt: str | None = None
    ) -> int:
        """Stores a new version after checking that it loads and fits its schema; returns it.

        Raises the `ferroscore.FerroscoreError` of the failing check, so nothing unservable
        is ever stored.
        """
        endpoint = self._build(ModelVersion(name, 0, fmt, artifact, input_schema))
        fmt = endpoint.model.format
        with psycopg.connect(self._conninfo) as conn:
            # Serialise version numbering per model name.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
            row = conn.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM models WHERE name = %s", (name,)
            ).fetchone()
            version = int(row[0]) if row else 1
            conn.execute(
                "INSERT INTO models (name, version, format, artifact, input_schema)"
                " VALUES (%s, %s, %s, %s, %s)",
                (name, version, fmt, artifact, input_schema),
            )
        return version

    def activate(self, name: str, version: int) -> None:
        """Makes `version` the one served for `name`."""
        with psycopg.connect(self._conninfo) as conn:
            conn.execute(
                "INSERT INTO active_models (name, version) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE"
                " SET version = excluded.version, activated_at = now()",
                (name, version),
            )

    def is_empty(self) -> bool:
        with psycopg.connect(self._conninfo) as conn:
            row = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM models)").fetchone()
        return bool(row and row[0])

    def ensure_demo(self) -> bool:
        """Registers and activates the bundled demo model when the registry is empty."""
        if not self.is_empty():
            return False
        demo = resources.files("ferroscore.demo")
        artifact = demo.joinpath("model.json").read_bytes()
        schema = demo.joinpath("schema.json").read_text()
        self.activate(DEMO_MODEL, self.register(DEMO_MODEL, artifact, schema))
        return True

    def active_versions(self) -> list[ModelVersion]:
        with psycopg.connect(self._conninfo) as conn:
            rows = conn.execute(
                "SELECT m.name, m.version, m.format, m.artifact, m.input_schema::text"
                " FROM active_models a JOIN models m USING (name, version) ORDER BY m.name"
            ).fetchall()
        return [ModelVersion(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def load_endpoints(self) -> dict[str, Endpoint]:
        """Builds the served endpoint of every active model version."""
        return {v.name: self._build(v) for v in self.active_versions()}

    def _build(self, v: ModelVersion) -> Endpoint:
        model = Model.load(v.artifact, v.format)
        return Endpoint(v.name, v.version, model, v.input_schema, **self._limits)
