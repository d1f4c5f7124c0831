"""The `ferroscore` command as a person runs it: a real subprocess, a real server, tables for
people, JSON for scripts, one-line errors and non-zero exits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferroscore import __version__

from support import FraudModels, ServerProcess, ferroscore, free_port


@pytest.fixture(scope="module")
def server(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = ServerProcess({"DATABASE_URL": module_database},
                        tmp_path_factory.mktemp("cli") / "server.log")  # fmt: skip
    try:
        srv.wait_ready()
        # The CLI reads its key from the environment, as a user's shell sets it.
        os.environ["FERROSCORE_API_KEY"] = srv.key or ""
        yield srv
    finally:
        os.environ.pop("FERROSCORE_API_KEY", None)
        assert srv.stop() == 0, srv.log()


def test_version_and_config() -> None:
    assert ferroscore("--version").stdout.strip() == f"ferroscore, version {__version__}"
    assert "FERROSCORE_MAX_ROWS" in ferroscore("config", "--markdown").stdout


def test_schema_infer_writes_schema_and_profile(fraud: FraudModels, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    done = ferroscore("schema", "infer", fraud.lightgbm, "--data", fraud.parquet,
                      "--margin", "0", "--profile", profile)  # fmt: skip
    schema = json.loads(done.stdout)
    assert schema["properties"]["merchant"]["x-ferroscore-unknown-category"] == "missing"
    assert json.loads(profile.read_text())["rows"] == 3000
    strict = json.loads(ferroscore("schema", "infer", fraud.lightgbm, "--data", fraud.csv,
                                   "--strict").stdout)  # fmt: skip
    assert strict["properties"]["merchant"]["x-ferroscore-unknown-category"] == "error"
    failed = ferroscore("schema", "infer", fraud.lightgbm, "--data", fraud.lightgbm, check=False)
    assert failed.returncode != 0
    assert failed.stderr.startswith("Error: ")


def test_models_lifecycle(server: ServerProcess, fraud: FraudModels) -> None:
    url = ("--url", server.url)
    done = ferroscore("models", "push", "cli", fraud.lightgbm, "--data", fraud.parquet, *url,
                      "--json")  # fmt: skip
    created = json.loads(done.stdout)
    assert (created["version"], created["format"]) == (1, "lightgbm-text")
    _status, one = server.request("GET", "/v1/models/cli/versions/1")
    assert one["profile"]["rows"] == 3000
    ferroscore("models", "activate", "cli", "1", *url)
    thresholds = fraud.dir / "thresholds.json"
    thresholds.write_text('[{"min": 0.5, "decision": "review"}, {"decision": "approve"}]')
    done = ferroscore("models", "push", "cli", fraud.xgboost, "--schema", fraud.schema,
                      "--thresholds", thresholds, "--activate", *url)  # fmt: skip
    assert "cli" in done.stdout
    assert "xgboost-json" in done.stdout
    listed = json.loads(ferroscore("models", "list", *url, "--json").stdout)
    assert {"name": "cli", "active_version": 2} .items() <= next(
        m for m in listed if m["name"] == "cli").items()  # fmt: skip
    versions = json.loads(ferroscore("models", "versions", "cli", *url, "--json").stdout)
    assert [(v["version"], v["active"]) for v in versions] == [(1, False), (2, True)]
    shadow = json.loads(ferroscore("models", "shadow", "cli", "1", "--share", "0.2", *url,
                                   "--json").stdout)  # fmt: skip
    assert shadow["shadow"] == {"version": 1, "share": 0.2}
    refused = ferroscore("models", "delete", "cli", "1", *url, check=False)
    assert refused.returncode == 1
    assert (
        refused.stderr.strip() == "Error: HTTP 409 version_in_use: version 1 of 'cli' is the shadow"
    )
    ferroscore("models", "shadow", "cli", "--off", *url)
    back = json.loads(ferroscore("models", "rollback", "cli", *url, "--json").stdout)
    assert back["active_version"] == 1
    ferroscore("models", "activate", "cli", "2", *url)
    assert "deleted cli v1" in ferroscore("models", "delete", "cli", "1", *url).stdout


def test_errors_are_one_line_and_fail(fraud: FraudModels) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    done = ferroscore("models", "list", "--url", nobody, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: cannot reach {nobody}")
    assert done.stderr.count("\n") == 1
    usage = ferroscore("models", "push", "x", fraud.lightgbm, "--url", nobody, check=False)
    assert usage.returncode == 2
    assert "--schema" in usage.stderr


def test_push_keeps_a_profile_and_knows_a_version_it_has(
    server: ServerProcess, fraud: FraudModels, tmp_path: Path
) -> None:
    """The walk-through's `schema infer --profile` then `models push --schema --profile`: the
    version has the profile (drift has a reference). The same push again is that version,
    unless --force."""
    url = ("--url", server.url)
    schema, profile = tmp_path / "schema.json", tmp_path / "profile.json"
    schema.write_text(ferroscore("schema", "infer", fraud.lightgbm, "--data", fraud.parquet,
                                 "--profile", profile).stdout)  # fmt: skip
    push = ("models", "push", "profiled", fraud.lightgbm, "--schema", schema, "--profile",
            profile, *url, "--json")  # fmt: skip
    created = json.loads(ferroscore(*push).stdout)
    assert (created["version"], created["existing"]) == (1, False)
    _, one = server.request("GET", "/v1/models/profiled/versions/1")
    assert one["profile"] == json.loads(profile.read_text())
    again = json.loads(ferroscore(*push).stdout)
    assert (again["version"], again["existing"]) == (1, True)
    forced = json.loads(ferroscore(*push, "--force").stdout)
    assert (forced["version"], forced["existing"]) == (2, False)
    both = ferroscore("models", "push", "profiled", fraud.lightgbm, "--data", fraud.parquet,
                      "--profile", profile, *url, check=False)  # fmt: skip
    assert both.returncode == 2
    assert "--profile" in both.stderr
    # Rollback steps back one activation each time.
    for version in ("1", "2"):
        ferroscore("models", "activate", "profiled", version, *url)
    assert "never" in ferroscore("models", "rollback", "--help").stdout
    back = json.loads(ferroscore("models", "rollback", "profiled", *url, "--json").stdout)
    assert (back["active_version"], back["previous_version"]) == (1, None)
    refused = ferroscore("models", "rollback", "profiled", *url, check=False)
    assert "no_previous_version" in refused.stderr
