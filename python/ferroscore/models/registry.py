"""The model registry in PostgreSQL, storage only: immutable numbered versions of each model,
which one is active (champion), the one before it (for rollback), an optional shadow, and an
audit row for every change. Every change NOTIFYs `CHANNEL` in its own transaction, so each
serving process's catalog hears of it once it is committed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ferroscore._core import Endpoint

DEMO_MODEL = "breast-cancer"
#: The tenant of keyless callers when authentication is off, of the demo model and of the
#: development key.
DEFAULT_TENANT = "default"
CHANNEL = "ferroscore_catalog"
#: How many earlier activations a model keeps to roll back through.
HISTORY = 100
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class RegistryError(Exception):
    """A lifecycle request the registry's state refuses; `status` and `code` say how."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(name: str, version: int | None = None) -> RegistryError:
    what = f"model {name!r}" if version is None else f"version {version} of model {name!r}"
    return RegistryError(404, "not_found", f"no {what}")


@dataclass(frozen=True)
class Artifact:
    """What a served version is built from."""

    tenant: str
    name: str
    version: int
    format: str | None  # detected from the bytes when None
    artifact: bytes
    input_schema: str
    thresholds: str | None
    #: The class labels the scores are of, when the version was registered with them.
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ServedState:
    """What the catalog serves for one model name: champion version, shadow and its share."""

    tenant: str
    name: str
    version: int
    shadow_version: int | None
    shadow_share: float


EndpointBuilder = Callable[[Artifact], Endpoint]
#: Checks an uploaded artifact before anything of this process loads it (see
#: `ferroscore.models.sandbox`); raises what the load would.
UploadCheck = Callable[[Artifact], None]

_VERSION_COLUMNS = (
    "m.name, m.version, m.format, m.sha256, m.n_features, m.objective, m.metadata,"
    " m.thresholds, m.labels, m.created_at, m.created_by, length(m.artifact) AS artifact_bytes,"
    " (a.version = m.version) IS TRUE AS active, (a.shadow_version = m.version) IS TRUE AS shadow"
)


class ModelRegistry:
    """Registers, activates, shadows, rolls back and deletes model versions."""

    def __init__(
        self,
        pool: ConnectionPool,
        build: EndpointBuilder,
        tenant: str = DEFAULT_TENANT,
        check: UploadCheck | None = None,
    ) -> None:
        """`build` turns an artifact into a served `Endpoint` (with the service's limits); it
        is called before anything is stored, so nothing unservable ever is. `check`, when
        given, vets a registered artifact before `build` loads it in this process. Every name
        is `tenant`'s: another tenant's models are not there (`scoped` gives their view)."""
        self._pool = pool
        self._build = build
        self._check = check
        self.tenant = tenant

    def scoped(self, tenant: str) -> ModelRegistry:
        """The same registry as `tenant` sees it."""
        if tenant == self.tenant:
            return self
        return ModelRegistry(self._pool, self._build, tenant, self._check)

    # -- writing ---------------------------------------------------------------------------

    def register(
        self,
        name: str,
        artifact: bytes,
        input_schema: str,
        *,
        thresholds: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        fmt: str | None = None,
        actor: str = "system",
        force: bool = False,
    ) -> dict[str, Any]:
        """Stores a new version after building its endpoint; returns the version's summary,
        with `existing` False. The same artifact with the same schema and thresholds as a
        version of `name` already has is that version (`existing` True, nothing stored),
        unless `force`. `labels` name the classes the scores are of (one per class; two for
        a model with one probability).

        Raises the `ferroscore.FerroscoreError` of the failing check (`ModelLoadError`,
        `SchemaError` with its `pointer` and `document`)."""
        check_name(name)
        t = self.tenant
        sha = hashlib.sha256(artifact).hexdigest()
        classes = tuple(labels) if labels else None
        upload = Artifact(t, name, 1, fmt, artifact, input_schema, thresholds, classes)
        if self._check is not None:
            self._check(upload)
        endpoint = self._build(upload)
        model = endpoint.model
        with self._pool.connection() as conn:
            # Serialise version numbering per model name.
            self._lock(conn, name)
            same = self._same(conn, name, sha, input_schema, thresholds, classes)
            if not force and same:
                return self._created(name, same, existing=True)
            # Numbered past every version ever registered, deleted ones too: their decisions
            # keep their number.
            row = conn.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM version_features"
                " WHERE tenant = %s AND name = %s",
                (t, name),
            ).fetchone()
            version = int(row[0]) if row else 1
            features, context = endpoint.logged_names
            conn.execute(
                "INSERT INTO version_features (tenant, name, version, features, context)"
                " VALUES (%s, %s, %s, %s, %s)",
                (t, name, version, features, context),
            )
            conn.execute(
                "INSERT INTO models (tenant, name, version, format, artifact, input_schema,"
                " thresholds, metadata, profile, sha256, n_features, objective, created_by,"
                " labels) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    t,
                    name,
                    version,
                    model.format,
                    artifact,
                    input_schema,
                    thresholds,
                    Jsonb(dict(metadata or {})),
                    Jsonb(dict(profile)) if profile is not None else None,
                    sha,
                    endpoint.model.n_features,
                    endpoint.model.objective,
                    actor,
                    Jsonb(list(classes)) if classes else None,
                ),
            )
            self._audit(conn, actor, "register", name, None, version, {"sha256": sha})
        return self._created(name, version, existing=False)

    def _created(self, name: str, version: int, existing: bool) -> dict[str, Any]:
        created = self.version(name, version)
        del created["input_schema"], created["profile"]
        created["existing"] = existing
        return created

    def _same(
        self, conn: Connection[Any], name: str, sha: str, schema: str, thresholds: str | None,
        labels: tuple[str, ...] | None,
    ) -> int | None:  # fmt: skip
        """The version of `name` with this artifact, schema, thresholds and labels, if one
        has."""
        row = conn.execute(
            "SELECT max(version) FROM models WHERE tenant = %s AND name = %s AND sha256 = %s"
            " AND input_schema = %s::jsonb AND thresholds IS NOT DISTINCT FROM %s::jsonb"
            " AND labels IS NOT DISTINCT FROM %s",
            (self.tenant, name, sha, schema, thresholds,
             Jsonb(list(labels)) if labels else None),
        ).fetchone()  # fmt: skip
        return int(row[0]) if row and row[0] is not None else None

    def activate(self, name: str, version: int, actor: str = "system") -> dict[str, Any]:
        """Makes `version` the one served for `name`; the one it replaces goes on top of the
        rollback history. Activating the shadow version ends the shadow."""
        with self._pool.connection() as conn:
            self._lock(conn, name)
            self._require(conn, name, version)
            current = self._state(conn, name)
            before = current["version"] if current else None
            if before == version:
                return self.status(name, conn)
            history = [*current["history"], before][-HISTORY:] if current else []
            self._serve(conn, name, version, history, insert=current is None)
            self._audit(conn, actor, "activate", name, before, version)
            return self.status(name, conn)

    def rollback(self, name: str, actor: str = "system") -> dict[str, Any]:
        """Serves again the version that was active before the current one, and takes it off
        the history: each rollback steps back one activation (up to `HISTORY` of them)."""
        with self._pool.connection() as conn:
            self._lock(conn, name)
            current = self._state(conn, name)
            if current is None:
                raise RegistryError(404, "not_found", f"model {name!r} has no active version")
            history = list(current["history"])
            while history and history[-1] == current["version"]:
                history.pop()  # a deleted version between two activations of one version
            if not history:
                raise RegistryError(
                    409, "no_previous_version", f"model {name!r} has no version to roll back to"
                )
            previous = history.pop()
            self._serve(conn, name, previous, history)
            self._audit(conn, actor, "rollback", name, current["version"], previous)
            return self.status(name, conn)

    def _serve(
        self, conn: Connection[Any], name: str, version: int, history: list[int],
        insert: bool = False,
    ) -> None:  # fmt: skip
        """Writes the served state: `version` active, `history` behind it (its last entry the
        rollback target), the shadow ended when it is `version`."""
        if insert:
            conn.execute(
                "INSERT INTO active_models (tenant, name, version) VALUES (%s, %s, %s)",
                (self.tenant, name, version),
            )
            return
        conn.execute(
            "UPDATE active_models SET version = %(v)s, history = %(h)s,"
            " previous_version = %(p)s, activated_at = now(),"
            " shadow_version = CASE WHEN shadow_version = %(v)s THEN NULL ELSE shadow_version END,"
            " shadow_share = CASE WHEN shadow_version = %(v)s THEN 0 ELSE shadow_share END"
            " WHERE tenant = %(t)s AND name = %(n)s",
            {"v": version, "h": history, "p": history[-1] if history else None,
             "t": self.tenant, "n": name},
        )  # fmt: skip

    def set_shadow(
        self, name: str, version: int, share: float, actor: str = "system"
    ) -> dict[str, Any]:
        """Scores `version` beside the champion on `share` of the requests."""
        with self._pool.connection() as conn:
            self._lock(conn, name)
            self._require(conn, name, version)
            current = self._state(conn, name)
            if current is None:
                raise RegistryError(
                    409, "no_active_version", f"model {name!r} has no active version to shadow"
                )
            if current["version"] == version:
                raise RegistryError(
                    409, "shadow_is_champion", f"version {version} is already the active one"
                )
            conn.execute(
                "UPDATE active_models SET shadow_version = %s, shadow_share = %s"
                " WHERE tenant = %s AND name = %s",
                (version, share, self.tenant, name),
            )
            self._audit(
                conn,
                actor,
                "shadow",
                name,
                current["shadow_version"],
                version,
                {"share": share},
            )
            return self.status(name, conn)

    def clear_shadow(self, name: str, actor: str = "system") -> dict[str, Any]:
        with self._pool.connection() as conn:
            self._lock(conn, name)
            current = self._state(conn, name)
            if current is None or current["shadow_version"] is None:
                raise RegistryError(404, "not_found", f"model {name!r} has no shadow version")
            conn.execute(
                "UPDATE active_models SET shadow_version = NULL, shadow_share = 0"
                " WHERE tenant = %s AND name = %s",
                (self.tenant, name),
            )
            self._audit(conn, actor, "unshadow", name, current["shadow_version"], None)
            return self.status(name, conn)

    def delete(self, name: str, version: int, actor: str = "system") -> None:
        """Deletes an inactive version (neither champion nor shadow)."""
        with self._pool.connection() as conn:
            self._lock(conn, name)
            self._require(conn, name, version)
            current = self._state(conn, name)
            if current and version in (current["version"], current["shadow_version"]):
                role = "active" if version == current["version"] else "the shadow"
                raise RegistryError(
                    409, "version_in_use", f"version {version} of {name!r} is {role}"
                )
            if current and version in current["history"]:
                history = [v for v in current["history"] if v != version]
                conn.execute(
                    "UPDATE active_models SET history = %s, previous_version = %s"
                    " WHERE tenant = %s AND name = %s",
                    (history, history[-1] if history else None, self.tenant, name),
                )
            conn.execute(
                "DELETE FROM models WHERE tenant = %s AND name = %s AND version = %s",
                (self.tenant, name, version),
            )
            self._audit(conn, actor, "delete", name, version, None)

    def ensure_demo(self) -> bool:
        """Registers and activates the bundled demo model when the registry is empty."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM models)").fetchone()
        if not (row and row[0]):
            return False
        demo = resources.files("ferroscore.demo")
        artifact = demo.joinpath("model.json").read_bytes()
        schema = demo.joinpath("schema.json").read_text()
        version = self.register(DEMO_MODEL, artifact, schema)["version"]
        self.activate(DEMO_MODEL, version)
        return True

    # -- reading ---------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """Every model name with its active, shadow and latest versions."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                "SELECT m.name, max(m.version) AS latest_version, count(*) AS versions,"
                " a.version AS active_version, a.shadow_version, a.shadow_share"
                " FROM models m LEFT JOIN active_models a USING (tenant, name) WHERE m.tenant = %s"
                " GROUP BY m.name, a.version, a.shadow_version, a.shadow_share ORDER BY m.name",
                (self.tenant,),
            ).fetchall()

    def versions(self, name: str) -> list[dict[str, Any]]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_VERSION_COLUMNS} FROM models m LEFT JOIN active_models a"
                " USING (tenant, name) WHERE m.tenant = %s AND m.name = %s ORDER BY m.version",
                (self.tenant, name),
            ).fetchall()
        if not rows:
            raise not_found(name)
        return [_summary(r) for r in rows]

    def version(self, name: str, version: int) -> dict[str, Any]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_VERSION_COLUMNS}, m.input_schema, m.profile FROM models m"
                " LEFT JOIN active_models a USING (tenant, name)"
                " WHERE m.tenant = %s AND m.name = %s AND m.version = %s",
                (self.tenant, name, version),
            ).fetchone()
        if row is None:
            raise not_found(name, version)
        return _summary(row)

    def status(self, name: str, conn: Connection[Any] | None = None) -> dict[str, Any]:
        """The served state of `name`: active, previous and shadow versions."""
        if conn is None:
            with self._pool.connection() as own:
                return self.status(name, own)
        state = self._state(conn, name)
        if state is None:
            raise RegistryError(404, "not_found", f"model {name!r} has no active version")
        return {
            "name": name,
            "active_version": state["version"],
            "previous_version": state["previous_version"],
            "shadow": (
                {"version": state["shadow_version"], "share": state["shadow_share"]}
                if state["shadow_version"] is not None
                else None
            ),
        }

    def audit(self, name: str) -> list[dict[str, Any]]:
        """Every change to `name`, oldest first (kept after its versions are deleted)."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT at, actor, action, from_version, to_version, detail FROM model_audit"
                " WHERE tenant = %s AND name = %s ORDER BY id",
                (self.tenant, name),
            ).fetchall()
        if not rows:
            raise not_found(name)
        return rows

    def served(self) -> list[ServedState]:
        """The served state of every active model of every tenant: cheap, read on every
        catalog reconcile."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT tenant, name, version, shadow_version, shadow_share FROM active_models"
                " ORDER BY tenant, name"
            ).fetchall()
        return [ServedState(*r) for r in rows]

    def artifact(self, name: str, version: int) -> Artifact:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT format, artifact, input_schema::text, thresholds::text, labels"
                " FROM models WHERE tenant = %s AND name = %s AND version = %s",
                (self.tenant, name, version),
            ).fetchone()
        if row is None:
            raise not_found(name, version)
        labels = tuple(row[4]) if row[4] else None
        return Artifact(self.tenant, name, version, row[0], bytes(row[1]), row[2], row[3],
                        labels)  # fmt: skip

    # -- helpers ---------------------------------------------------------------------------

    def _lock(self, conn: Connection[Any], name: str) -> None:
        """Serialises the changes to one model (version numbering, served state)."""
        key = f"{self.tenant}/{name}"
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def _require(self, conn: Connection[Any], name: str, version: int) -> None:
        found = conn.execute(
            "SELECT 1 FROM models WHERE tenant = %s AND name = %s AND version = %s",
            (self.tenant, name, version),
        ).fetchone()
        if found is None:
            raise not_found(name, version)

    def _state(self, conn: Connection[Any], name: str) -> dict[str, Any] | None:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                "SELECT version, previous_version, history, shadow_version, shadow_share"
                " FROM active_models WHERE tenant = %s AND name = %s",
                (self.tenant, name),
            ).fetchone()

    def _audit(
        self,
        conn: Connection[Any],
        actor: str,
        action: str,
        name: str,
        before: int | None,
        after: int | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO model_audit (tenant, actor, action, name, from_version, to_version,"
            " detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self.tenant, actor, action, name, before, after, Jsonb(dict(detail or {}))),
        )
        # Delivered at commit, to every listening process of every server on this database.
        payload = orjson.dumps({"tenant": self.tenant, "name": name}).decode()
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise RegistryError(
            400,
            "invalid_name",
            f"model name {name!r}: use 1 to 63 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit",
        )


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["created_at"] = row["created_at"].isoformat()
    return out
