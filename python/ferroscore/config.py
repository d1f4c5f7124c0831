"""Settings from the environment, declared once (`SETTINGS`: variable, type, default, bounds,
meaning) and validated at start-up: a bad value stops the service with a message naming the
variable. The docs' configuration page is generated from the same declaration when the site
is built (`ferroscore config --markdown` prints the same table)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its `Settings` field, type, default, bounds and meaning."""

    field: str
    env: str
    default: Any
    meaning: str
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        if isinstance(self.default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{self.env}={raw!r} is not true or false")
        if self.low is not None:
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{self.env}={raw!r} is not an integer") from None
            assert self.high is not None
            if not self.low <= value <= self.high:
                raise ConfigError(f"{self.env}={value} is outside {self.low}..{self.high}")
            return value
        if self.choices:
            if raw.upper() not in self.choices:
                raise ConfigError(f"{self.env}={raw!r} is not one of {', '.join(self.choices)}")
            return raw.upper()
        if isinstance(self.default, Path):
            return Path(raw)
        return raw

    def shown_default(self) -> str:
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return f"`{self.default}`"

    def shown_bounds(self) -> str:
        if self.low is not None:
            return f"{self.low} to {self.high}"
        if self.choices:
            return ", ".join(self.choices)
        return ""


def _connection_string(variable: str) -> Callable[[str], None]:
    """The check of a variable that holds a libpq URL or `key=value` string."""

    def check(value: str) -> None:
        try:
            conninfo_to_dict(value)
        except psycopg.ProgrammingError as e:
            raise ConfigError(f"{variable} is not a PostgreSQL connection string: {e}") from None

    return check


_MIB = 1 << 20

SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "DATABASE_URL", None,
            "a libpq URL or `key=value` string; unset: start the embedded PostgreSQL"),
    Setting("direct_url", "FERROSCORE_DIRECT_URL", None,
            "a URL straight to PostgreSQL for what needs a session of its own (LISTEN, the "
            "migrations' lock), when `DATABASE_URL` goes through PgBouncer in transaction mode; "
            "set, it also turns off prepared statements on the pooled connections; unset: "
            "`DATABASE_URL`"),
    Setting("data_dir", "FERROSCORE_DATA_DIR", Path(".ferroscore"),
            "where the embedded PostgreSQL keeps its data"),
    Setting("host", "FERROSCORE_HOST", "127.0.0.1", "listen address"),
    Setting("front", "FERROSCORE_FRONT", False,
            "nginx from deploy/nginx stands in front of this service (docker-compose sets it); "
            "unset, serving beyond loopback logs a warning at start: Robyn alone cannot refuse "
            "hostile HTTP"),
    Setting("port", "FERROSCORE_PORT", 8000,
            "listen port; the service refuses to start if anyone listens there", 1, 65535),
    Setting("processes", "FERROSCORE_PROCESSES", 1, "serving processes", 1, 64),
    Setting("workers", "FERROSCORE_WORKERS", None,
            "worker threads per process; unset: 1 (requests waiting for the durable decision "
            "log, or for an async hook, wait on the process's event loop, not on a thread)",
            1, 64),
    Setting("grace_s", "FERROSCORE_GRACE_S", 20,
            "on SIGTERM, how long open connections may take to finish before the serving "
            "processes close them (then the decisions are written and they exit)", 0, 3600),
    Setting("drain_delay_s", "FERROSCORE_DRAIN_DELAY_S", 1,
            "on SIGTERM, how long new connections are still taken (readiness answering 503) "
            "before they are refused, so that load balancers polling readiness stop first; "
            "part of the grace period", 0, 3600),
    Setting("health_timeout_s", "FERROSCORE_HEALTH_TIMEOUT_S", 10,
            "a serving process that cannot answer for this long (frozen, or every worker "
            "thread stuck in one request) is killed and replaced", 1, 3600),
    Setting("start_timeout_s", "FERROSCORE_START_TIMEOUT_S", 120,
            "a serving process that does not serve this long after it started (models "
            "loaded, port bound) is killed and replaced", 1, 3600),
    Setting("max_body_bytes", "FERROSCORE_MAX_BODY_BYTES", _MIB,
            "larger scoring bodies get 413 before parsing", 64, 1 << 30),
    Setting("max_depth", "FERROSCORE_MAX_DEPTH", 32,
            "deepest nesting of arrays and objects in a body", 3, 32),
    Setting("max_string_bytes", "FERROSCORE_MAX_STRING_BYTES", 4096,
            "longest string or key in a body", 16, _MIB),
    Setting("max_features", "FERROSCORE_MAX_FEATURES", 1024,
            "most keys in one features object", 1, 1 << 20),
    Setting("max_rows", "FERROSCORE_MAX_ROWS", 10_000,
            "most records in a batch or NDJSON body", 1, 1_000_000),
    Setting("max_artifact_bytes", "FERROSCORE_MAX_ARTIFACT_BYTES", 256 * _MIB,
            "largest model upload (the whole multipart body); larger gets 413 before it is read",
            1024, 1 << 32),
    Setting("model_max_features", "FERROSCORE_MODEL_MAX_FEATURES", 65_536,
            "most input features a model file may declare", 1, 1 << 24),
    Setting("model_max_outputs", "FERROSCORE_MODEL_MAX_OUTPUTS", 10_000,
            "most outputs (classes, targets, trees per iteration) a model file may declare",
            1, 1 << 20),
    Setting("model_max_trees", "FERROSCORE_MODEL_MAX_TREES", 100_000,
            "most trees in a model", 1, 1 << 24),
    Setting("model_max_nodes", "FERROSCORE_MODEL_MAX_NODES", 50_000_000,
            "most tree nodes (leaves included) over all of a model's trees", 1, 1 << 31),
    Setting("model_max_depth", "FERROSCORE_MODEL_MAX_DEPTH", 512,
            "deepest tree in a model, in splits from root to leaf (reason codes take 32 bytes "
            "times its square per row)", 1, 1024),
    Setting("model_max_categories", "FERROSCORE_MODEL_MAX_CATEGORIES", 1 << 20,
            "largest category code a model's categorical split may test", 1, 1 << 24),
    Setting("model_max_memory_mb", "FERROSCORE_MODEL_MAX_MEMORY_MB", 4096,
            "most memory one model may take once decoded and laid out, in MiB", 1, 1 << 20),
    Setting("upload_memory_mb", "FERROSCORE_UPLOAD_MEMORY_MB", 8192,
            "the address space of the child process that loads and checks an upload before "
            "any serving process sees it, in MiB; past it the upload is refused with 422",
            256, 1 << 20),
    Setting("upload_cpu_s", "FERROSCORE_UPLOAD_CPU_S", 60,
            "CPU seconds that child process may take; past it the upload is refused", 1, 3600),
    Setting("catalog_reconcile_s", "FERROSCORE_CATALOG_RECONCILE_S", 5,
            "seconds between full re-reads of the active versions, in case a NOTIFY was missed",
            1, 3600),
    Setting("decision_log", "FERROSCORE_DECISION_LOG", "DURABLE",
            "`durable`: a decision is on the spool's disk (fsynced) before its answer is sent; "
            "`buffered`: it is in the kernel's page cache (it survives a crash of the service, "
            "not of the machine); `off`: no decision is recorded",
            choices=("DURABLE", "BUFFERED", "OFF")),
    Setting("spool_dir", "FERROSCORE_SPOOL_DIR", None,
            "where each serving process spools its decisions before they reach PostgreSQL (a "
            "local disk; one subdirectory per process); unset: `FERROSCORE_DATA_DIR`/spool"),
    Setting("spool_max_mb", "FERROSCORE_SPOOL_MAX_MB", 1024,
            "most spooled decisions per process not yet in PostgreSQL, in MiB; past it (or on "
            "a full disk) scoring answers 503 with `Retry-After`", 1, 1 << 20),
    Setting("decision_flush_ms", "FERROSCORE_DECISION_FLUSH_MS", 200,
            "how often the spool's recent decisions are moved into PostgreSQL", 1, 60_000),
    Setting("decision_flushers", "FERROSCORE_DECISION_FLUSHERS", 4,
            "per process, how many sealed spool segments move into PostgreSQL at once, each "
            "over a connection of its own, pooled on top of `FERROSCORE_DB_POOL_SIZE`",
            1, 16),
    Setting("commit_window_us", "FERROSCORE_COMMIT_WINDOW_US", 200,
            "`durable`: how long a group of decisions may gather before its one write and "
            "`fdatasync`, once requests are coming in (as PostgreSQL's `commit_delay`): fewer "
            "syncs for a bounded wait (200 µs: 1.15x the requests/s of none in `bench/ab.py`; "
            "longer gained nothing more); 0: none", 0, 100_000),
    Setting("decision_retention_days", "FERROSCORE_DECISION_RETENTION_DAYS", 0,
            "decisions older than this many days are dropped, a daily partition at a time "
            "(checked hourly); 0 keeps them all", 0, 36_500),
    Setting("drift_min_rows", "FERROSCORE_DRIFT_MIN_ROWS", 100,
            "monitoring: a window (or a day or hour of its series) with fewer logged rows says "
            "`insufficient_data` instead of a PSI, which is noise on a small sample", 1,
            1_000_000),
    Setting("db_pool_size", "FERROSCORE_DB_POOL_SIZE", 4, "database connections per process",
            2, 100),
    Setting("log_level", "FERROSCORE_LOG_LEVEL", "INFO", "log level",
            choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("log_format", "FERROSCORE_LOG_FORMAT", "AUTO",
            "one JSON object per line, or text; AUTO: text when stderr is a terminal",
            choices=("AUTO", "JSON", "TEXT")),
    Setting("access_log", "FERROSCORE_ACCESS_LOG", True,
            "a log line per answered request (time, request id, method, route, model, status, "
            "latency, tenant, key), written by a thread of its own; at log level INFO or DEBUG"),
    Setting("idempotency_ttl_s", "FERROSCORE_IDEMPOTENCY_TTL_S", 86_400,
            "how long the response to an `Idempotency-Key` is kept and replayed", 1,
            30 * 86_400),
    Setting("hooks", "FERROSCORE_HOOKS", None,
            "the Python modules whose hooks the service runs (`package.module`, several "
            "comma-separated; see [Extending in Python](extending.md))"),
    Setting("hook_budget_ms", "FERROSCORE_HOOK_BUDGET_MS", 250,
            "a hook's time budget unless it declares its own; past it, 503 `hook_timeout`",
            1, 60_000),
    Setting("metrics", "FERROSCORE_METRICS", True,
            "count requests, scores and refusals for `GET /metrics` (Prometheus, scope "
            "`metrics`); false: no counting and no route"),
    Setting("auth", "FERROSCORE_AUTH", True,
            "require an API key or JWT on every route but health, `/docs` and `/openapi.json`; "
            "false: every caller is the `default` tenant with every scope"),
    Setting("operator_tenant", "FERROSCORE_OPERATOR_TENANT", "default",
            "the tenant whose `metrics` keys may read `GET /metrics`, which counts every "
            "tenant's models; a `metrics` key of another tenant gets 403 `operator_only`"),
    Setting("jwt_key_file", "FERROSCORE_JWT_KEY_FILE", None,
            "accept JWT bearer tokens signed with this key: a PEM public key (RS, PS, ES, "
            "EdDSA) or a file holding an HMAC secret (HS)"),
    Setting("jwt_jwks_file", "FERROSCORE_JWT_JWKS_FILE", None,
            "accept JWTs signed with a key of this JWKS file (picked by `kid`)"),
    Setting("jwt_audience", "FERROSCORE_JWT_AUDIENCE", None, "the `aud` a JWT must carry"),
    Setting("jwt_issuer", "FERROSCORE_JWT_ISSUER", None, "the `iss` a JWT must carry"),
    Setting("jwt_tenant_claim", "FERROSCORE_JWT_TENANT_CLAIM", "tenant",
            "the JWT claim that names the caller's tenant"),
)  # fmt: skip

_CHECKS: dict[str, Callable[[str], None]] = {
    name: _connection_string(name) for name in ("DATABASE_URL", "FERROSCORE_DIRECT_URL")
}


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment; see `SETTINGS` for each meaning."""

    database_url: str | None
    direct_url: str | None
    data_dir: Path
    host: str
    front: bool
    port: int
    processes: int
    workers: int | None
    grace_s: int
    drain_delay_s: int
    health_timeout_s: int
    start_timeout_s: int
    max_body_bytes: int
    max_depth: int
    max_string_bytes: int
    max_features: int
    max_rows: int
    max_artifact_bytes: int
    model_max_features: int
    model_max_outputs: int
    model_max_trees: int
    model_max_nodes: int
    model_max_depth: int
    model_max_categories: int
    model_max_memory_mb: int
    upload_memory_mb: int
    upload_cpu_s: int
    catalog_reconcile_s: int
    decision_log: str
    spool_dir: str | None
    spool_max_mb: int
    decision_flush_ms: int
    decision_flushers: int
    commit_window_us: int
    decision_retention_days: int
    drift_min_rows: int
    db_pool_size: int
    log_level: str
    log_format: str
    access_log: bool
    idempotency_ttl_s: int
    hooks: str | None
    hook_budget_ms: int
    metrics: bool
    auth: bool
    operator_tenant: str
    jwt_key_file: str | None
    jwt_jwks_file: str | None
    jwt_audience: str | None
    jwt_issuer: str | None
    jwt_tenant_claim: str

    def exposed_without_front(self) -> bool:
        """Whether this service listens beyond loopback with no front declared."""
        if self.front or self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: whatever it resolves to, it is not loopback here
            return True

    def session_url(self, conninfo: str) -> str:
        """Where LISTEN and the migrations connect: FERROSCORE_DIRECT_URL, else `conninfo`."""
        return self.direct_url or conninfo

    def pool_options(self) -> dict[str, Any]:
        """The pooled connections' options: no prepared statements through a transaction
        pooler (a statement prepared on one server connection is unknown on the next)."""
        return {"kwargs": {"prepare_threshold": None}} if self.direct_url else {}

    def worker_threads(self) -> int:
        """FERROSCORE_WORKERS, else 1: a durable answer waits for the disk on the event loop,
        not on a thread, so one worker thread keeps the core busy (more convoy on the GIL)."""
        return self.workers if self.workers is not None else 1

    def spool_directory(self) -> Path:
        """Where the decision spools are: FERROSCORE_SPOOL_DIR, else under the data dir."""
        return Path(self.spool_dir) if self.spool_dir is not None else self.data_dir / "spool"

    def limits(self) -> dict[str, int]:
        """The request limits, as `Endpoint` takes them."""
        names = ("max_body_bytes", "max_depth", "max_string_bytes", "max_features", "max_rows")
        return {name: getattr(self, name) for name in names}

    def model_limits(self) -> dict[str, int]:
        """What a model file may declare, as `Model.load` takes it."""
        limits = {
            name: getattr(self, f"model_max_{name}")
            for name in ("features", "outputs", "trees", "nodes", "depth", "categories")
        }
        return {**limits, "memory_bytes": self.model_max_memory_mb * _MIB}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads every declared variable; raises ConfigError on a bad value."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = env.get(s.env)
            if raw is None or raw == "":
                values[s.field] = s.default
                continue
            if s.env in _CHECKS:
                _CHECKS[s.env](raw)
            values[s.field] = s.parse(raw)
        return cls(**values)


def markdown_table() -> str:
    """The configuration table of the docs (docs/configuration.md), from the declaration."""
    lines = ["| variable | default | bounds | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        lines.append(f"| `{s.env}` | {s.shown_default()} | {s.shown_bounds()} | {s.meaning} |")
    return "\n".join(lines) + "\n"


def _declared_once() -> None:
    # Every Settings field has exactly one declaration; the defaults live only there.
    declared = [s.field for s in SETTINGS]
    own = [f.name for f in fields(Settings)]
    if declared != own:  # pragma: no cover - caught by any import in the tests
        raise RuntimeError(f"SETTINGS and Settings disagree: {declared} != {own}")


_declared_once()
