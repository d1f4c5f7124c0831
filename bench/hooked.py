"""The hooks `make bench` serves as the stack "ferroscore-hooks": a trivial `async`
enrichment hook that supplies one feature, and a trivial `async` decision hook that adds a
field to the answer (so the answer is rewritten); both awaited in place on the serving
loop. `hooked_sync` has the same two as plain functions ("ferroscore-hooks-sync": each runs
on the hooks' thread pool). They serve the demo model registered again as `HOOKED_MODEL`, its
schema marking `mean_radius` as supplied by enrichment (`register`), so the stack's requests
leave it out."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ferroscore.hooks import Context, Incoming, Outcome, Scored, decide, enrich

HOOKED_MODEL = "breast-cancer-hooked"
SUPPLIED = "mean_radius"
DEMO = resources.files("ferroscore.demo")


def supplied(incoming: Incoming) -> dict[str, list[Any]]:
    return {SUPPLIED: [17.99] * len(incoming)}


def marked(scored: Scored) -> Outcome:
    return Outcome(extra={"hooked": len(scored)})


@enrich(HOOKED_MODEL)
async def radius(incoming: Incoming, ctx: Context) -> dict[str, list[Any]]:
    return supplied(incoming)


@decide(HOOKED_MODEL)
async def mark(scored: Scored, ctx: Context) -> Outcome:
    return marked(scored)


def body() -> bytes:
    """The demo example without the feature the enrichment supplies."""
    example = json.loads(DEMO.joinpath("example.json").read_text())
    del example["features"][SUPPLIED]
    return json.dumps(example).encode()


def register(database_url: str) -> None:
    """Registers and activates the demo model (as the service would on an empty registry)
    and its hooked twin, on a migrated database."""
    from psycopg_pool import ConnectionPool

    from ferroscore import Endpoint, Model
    from ferroscore.migrations import migrate
    from ferroscore.models.registry import Artifact, ModelRegistry

    def build(a: Artifact) -> Endpoint:
        model = Model.load(a.artifact, a.format)
        return Endpoint(a.name, a.version, model, a.input_schema, thresholds=a.thresholds)

    migrate(database_url)
    schema = json.loads(DEMO.joinpath("schema.json").read_text())
    schema["properties"][SUPPLIED]["x-ferroscore-source"] = "enrichment"
    with ConnectionPool(database_url, min_size=1, max_size=1) as pool:
        registry = ModelRegistry(pool, build)
        registry.ensure_demo()
        artifact = DEMO.joinpath("model.json").read_bytes()
        version = registry.register(HOOKED_MODEL, artifact, json.dumps(schema))["version"]
        registry.activate(HOOKED_MODEL, version)
