"""Schemathesis runs every route of `/openapi.json` against a live server, with all its
checks (no 5xx, no status, content type, header or body outside the document, schema-valid
requests accepted, invalid ones refused, 405 with `Allow` for other methods, auth really
checked). Its configuration and hooks, each exception with its reason, are in
`schemathesis/`. The run is bounded (examples per operation, a fixed seed) and its summary
is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import FraudModels, ServerProcess, fraud_server

pytestmark = pytest.mark.e2e

HERE = Path(__file__).with_name("schemathesis")
EXAMPLES = os.environ.get("FERROSCORE_SCHEMATHESIS_EXAMPLES", "25")


@pytest.fixture(scope="module")
def server(
    module_database: str, fraud: FraudModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("schemathesis")
    with fraud_server(module_database, fraud, directory, FERROSCORE_WORKERS="2") as srv:
        yield srv


def test_every_route_conforms_to_the_document(server: ServerProcess, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), "--config-file", str(HERE / "schemathesis.toml"), "run",
        f"{server.url}/openapi.json", "--checks", "all", "--max-examples", EXAMPLES,
        "--seed", "20261129", "--workers", "1", "-H", f"Authorization: Bearer {server.key}",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "hooks", "NO_COLOR": "1", "PYTHONPATH": path}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    summary = done.stdout[done.stdout.rfind("SUMMARY") :] if "SUMMARY" in done.stdout else ""
    print(summary)
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert counts is not None, done.stdout[-5000:]
    assert int(counts[1]) == int(counts[2]) > 1000
    assert (
        re.search(r"Tested: (\d+)", done.stdout)[1]
        == re.search(r"Selected: \d+/(\d+)", done.stdout)[1]
    )  # type: ignore[index]
