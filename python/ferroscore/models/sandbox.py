"""The upload sandbox: a pushed model is loaded and exercised in a child process with memory
and CPU-time limits before any serving process sees it, so a hostile file costs a 422, never
a serving process.

The child (`python -m ferroscore.models.sandbox`) lowers its own limits (`RLIMIT_AS`, `RLIMIT_CPU`)
before it reads a byte; it then loads the artifact within the service's model limits,
scores probe rows and computes their reason codes, compiles the schema and thresholds
against the model, and answers one JSON line. A child that dies (a failed allocation aborts
it, the CPU limit kills it) is a refusal that says so. One upload is checked at a time per
process, so concurrent pushes cannot multiply the memory the limits allow."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from ferroscore._core import Endpoint, Model, ModelLoadError, SchemaError

#: Wall-clock seconds past the CPU limit after which a child that waits (not computes) is
#: killed.
_WALL_SLACK_S = 30
_one_at_a_time = threading.Lock()


@dataclass(frozen=True)
class Upload:
    """What a push asks to serve, and the bounds it is checked within."""

    artifact: bytes
    format: str | None
    schema: str
    thresholds: str | None
    model_limits: dict[str, int]
    request_limits: dict[str, int]


class UploadRefusedError(ModelLoadError):
    """The upload's child process died or ran past its limits."""

    field: str | None = None
    limit: str | None = None


def check(upload: Upload, memory_mb: int, cpu_s: int) -> None:
    """Loads and exercises `upload` in a child process limited to `memory_mb` of address
    space and `cpu_s` CPU seconds. Raises the child's `ModelLoadError` or `SchemaError`
    (with their fields), or `UploadRefusedError` when the child died."""
    header = {
        "format": upload.format, "schema": upload.schema, "thresholds": upload.thresholds,
        "model_limits": upload.model_limits, "request_limits": upload.request_limits,
        "memory_mb": memory_mb, "cpu_s": cpu_s,
    }  # fmt: skip
    stdin = orjson.dumps(header) + b"\n" + upload.artifact
    with _one_at_a_time:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "ferroscore.models.sandbox"], input=stdin,
                capture_output=True, timeout=cpu_s + _WALL_SLACK_S, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise UploadRefusedError(
                f"the model's check took longer than {cpu_s + _WALL_SLACK_S} s"
            ) from None
    answer = _answer(done.stdout)
    if answer is None:
        raise UploadRefusedError(_death(done.returncode, memory_mb, cpu_s))
    _raise_refusal(answer)


def _answer(stdout: bytes) -> dict[str, Any] | None:
    last = stdout.strip().rsplit(b"\n", 1)[-1]
    try:
        answer = orjson.loads(last)
    except orjson.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None


def _death(returncode: int, memory_mb: int, cpu_s: int) -> str:
    if returncode < 0:
        how = f"was killed by {signal.Signals(-returncode).name}"
    else:
        how = f"exited with status {returncode}"
    return (
        f"the model could not be loaded: its loader {how} (an upload is checked within "
        f"{memory_mb} MiB and {cpu_s} CPU seconds: FERROSCORE_UPLOAD_MEMORY_MB, "
        "FERROSCORE_UPLOAD_CPU_S)"
    )


def _raise_refusal(answer: dict[str, Any]) -> None:
    kind = answer.get("refused")
    if kind is None:
        return
    error: Exception
    if kind == "schema":
        error = SchemaError(answer["message"])
        for name in ("pointer", "document", "message"):
            setattr(error, name, answer[name])
    else:
        error = ModelLoadError(answer["message"])
        error.field = answer.get("field")  # type: ignore[attr-defined]
        error.limit = answer.get("limit")  # type: ignore[attr-defined]
    raise error


def _probe(model: Model) -> None:
    """Scores a row of zeros and one of missing values, with their reason codes: the paths a
    scoring request can reach."""
    import numpy as np

    rows = np.zeros((2, model.n_features))
    if model.format != "ferroscore-linear":  # NaN is missing to trees only
        rows[1, :] = np.nan
    model.predict(rows)
    try:
        model.contributions(rows)
    except ModelLoadError as e:
        if "unsupported" not in str(e):
            raise


def _child() -> None:
    header_line = sys.stdin.buffer.readline()
    header = orjson.loads(header_line)
    memory = header["memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (header["cpu_s"], header["cpu_s"]))
    artifact = sys.stdin.buffer.read()
    answer: dict[str, Any] = {"refused": None}
    try:
        model = Model.load(artifact, header["format"], header["model_limits"])
        _probe(model)
        Endpoint(
            "upload", 1, model, header["schema"], thresholds=header["thresholds"],
            **header["request_limits"],
        )  # fmt: skip
    except ModelLoadError as e:
        answer = {"refused": "model", "message": str(e), "field": getattr(e, "field", None),
                  "limit": getattr(e, "limit", None)}  # fmt: skip
    except SchemaError as e:
        answer = {"refused": "schema", "message": getattr(e, "message", str(e)),
                  "pointer": getattr(e, "pointer", ""),
                  "document": getattr(e, "document", "schema")}  # fmt: skip
    except MemoryError:
        answer = {"refused": "model", "message": "the model needs more memory than an upload "
                  "may take (FERROSCORE_UPLOAD_MEMORY_MB)"}  # fmt: skip
    sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")


if __name__ == "__main__":
    _child()
