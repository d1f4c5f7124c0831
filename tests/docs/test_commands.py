"""Every command of the README and the docs runs as written: the README's five-minute tour
and the "Serve your own model" walk-through against `ferroscore serve` on its embedded
PostgreSQL, as `make serve` runs it; the tour pages (getting started, the scoring API, keys,
the decision log) against a live server, in the order a reader takes them; and the offline
job. Only the address changes, to the test server's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import ServerProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "http://127.0.0.1:8000"
#: The pages a reader walks through, in reading order, against one live server.
TOUR = ["docs/getting-started.md", "docs/api.md", "docs/keys.md", "docs/decision-log.md"]
README_TOUR = ("README.md", "## A five-minute tour", "## Where production starts")
WALK_THROUGH = "docs/serve-your-model.md"
OFFLINE = "docs/offline.md"


@dataclass(frozen=True)
class Command:
    line: str
    shown: str  # the output the README shows, if any


def commands(page: str, section: str | None = None, until: str | None = None) -> list[Command]:
    """The `$ ` lines of a page's ```console blocks (between two headings, if given), with
    their outputs."""
    text = (ROOT / page).read_text()
    text = text[text.index(section) if section else 0 : text.index(until) if until else None]
    found: list[Command] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            line, _, shown = chunk.partition("\n")
            found.append(Command(line, shown.strip()))
    return found


def run(
    command: Command, url: str, cwd: Path, key_file: Path | None = None,
    database: str | None = None,
) -> str:  # fmt: skip
    """Runs a page's line against the server at `url` (on `database`, for the `keys`
    commands), with the key in `key_file` where the page reads `make serve`'s development
    key; files the page writes in the working directory go beside `key_file`."""
    env = {**os.environ, "FERROSCORE_URL": url,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    line = command.line.replace(ADDRESS, url)
    if database is not None:
        env["DATABASE_URL"] = database
    if key_file is not None:
        env["FERROSCORE_API_KEY"] = key_file.read_text().strip()
        line = line.replace(".ferroscore/dev-key", str(key_file))
        line = line.replace("acme.key", str(key_file.with_name("acme.key")))
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"{command.line}\n{done.stdout}\n{done.stderr}"
    if command.line.startswith("curl"):
        answer = json.loads(done.stdout)
        shown_error = command.shown.startswith('{"type"')
        assert ("code" in answer) == shown_error, f"{command.line}\n{done.stdout}"
        for key in re.findall(r'"(\w+)":', command.shown):
            assert f'"{key}"' in done.stdout, f"{command.line}: no {key!r} in {done.stdout}"
        if isinstance(answer, dict) and command.shown.startswith("{"):
            keys, elided = top_level_keys(command.shown)
            real = set(answer)
            # The shape shown is the answer's: every key, unless the page elides some.
            assert keys <= real if elided else keys == real, (
                f"{command.line}: the README shows {sorted(keys)}, the server {sorted(real)}"
            )
    return done.stdout


def top_level_keys(shown: str) -> tuple[set[str], bool]:
    """The keys of the first object a page shows, and whether it elides members (a `…`
    among them), read without parsing it: the pages abbreviate values as `…`."""
    keys: set[str] = set()
    depth, elided, i = 0, False, 0
    while i < len(shown):
        c = shown[i]
        if c == '"':
            end = shown.index('"', i + 1)
            while shown[end - 1] == "\\":
                end = shown.index('"', end + 1)
            if depth == 1 and shown[end + 1 : end + 2] == ":":
                keys.add(shown[i + 1 : end])
            i = end
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                break
        elif c == "…" and depth == 1 and shown[i - 1] in ",{":
            elided = True
        i += 1
    return keys, elided


def test_every_command_is_run_here() -> None:
    """A page with a command no test runs would go stale: every `$ ` line of the README and
    the docs is in a page this module runs."""
    tested = {*TOUR, README_TOUR[0], WALK_THROUGH, OFFLINE}
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    untested = [
        str(p.relative_to(ROOT))
        for p in pages
        if str(p.relative_to(ROOT)) not in tested and commands(str(p.relative_to(ROOT)))
    ]
    assert untested == []
    assert commands("README.md") == commands(*README_TOUR), "README commands outside its tour"


def test_the_tour_pages(
    module_database: str, spawn_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = spawn_server({"DATABASE_URL": module_database})
    server.wait_ready()
    tour = [command for page in TOUR for command in commands(page)]
    assert len(tour) >= 20
    key_file = tmp_path / "dev-key"
    key_file.write_text(server.key or "")
    for command in tour:
        run(command, server.url, ROOT, key_file, module_database)


def _embedded(
    tmp_path: Path, spawn_server: Callable[..., ServerProcess]
) -> tuple[ServerProcess, Path]:
    """As `make serve` runs it: no DATABASE_URL, the embedded PostgreSQL in a data directory;
    a working directory with the examples."""
    server = spawn_server({"FERROSCORE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": ""})
    server.wait_ready()
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    demo = Path("python", "ferroscore", "demo")
    shutil.copytree(ROOT / demo, work / demo)
    return server, work


def test_the_readme_tour(tmp_path: Path, spawn_server: Callable[..., ServerProcess]) -> None:
    server, work = _embedded(tmp_path, spawn_server)
    tour = commands(*README_TOUR)
    assert len(tour) >= 8
    for command in tour:
        run(command, server.url, work, tmp_path / "data" / "dev-key")
    _, versions = server.request("GET", "/v1/models/card-fraud/versions")
    assert [(v["version"], v["active"]) for v in versions["versions"]] == [(1, True)]


def test_serve_your_own_model(tmp_path: Path, spawn_server: Callable[..., ServerProcess]) -> None:
    server, work = _embedded(tmp_path, spawn_server)
    walk = commands(WALK_THROUGH)
    assert len(walk) >= 12
    for command in walk:
        run(command, server.url, work, tmp_path / "data" / "dev-key")
    _, versions = server.request("GET", "/v1/models/card-fraud/versions")
    assert [(v["version"], v["active"]) for v in versions["versions"]] == [
        (1, True), (2, False), (3, False)
    ]  # fmt: skip
    _, audit = server.request("GET", "/v1/models/card-fraud/audit")
    actions = [a["action"] for a in audit["audit"]]
    assert actions == ["register", "activate", "register", "shadow", "activate", "rollback",
                       "register"]  # fmt: skip


def test_offline_and_at_scale(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    steps = commands(OFFLINE)
    assert len(steps) >= 4
    for command in steps:
        run(command, ADDRESS, tmp_path)
    import pyarrow.parquet as pq

    scores = pq.read_table(tmp_path / "loans" / "scores.parquet")
    assert scores.num_rows == 200_000
    assert {"application_id", "score", "decision"} <= set(scores.column_names)
    reasons = (tmp_path / "loans" / "reasons.csv").read_text().splitlines()
    assert reasons[0] == '"application_id","score","reason_1","reason_1_contribution",' + (
        '"reason_2","reason_2_contribution","warnings"'
    )
    dask = pq.read_table(tmp_path / "loans" / "dask-scores").sort_by("application_id")
    assert dask.column("score").equals(scores.sort_by("application_id").column("score"))
