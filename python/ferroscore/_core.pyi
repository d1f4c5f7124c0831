"""Type stubs of the Rust extension `ferroscore._core`; checked against it by mypy stubtest."""

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias, final

import numpy as np
import numpy.typing as npt

__version__: str
#: Upper bounds of `Endpoint.stats`'s score buckets; a last bucket takes what is above.
SCORE_BOUNDS: list[float]
#: The columns of a decision's spooled rows (`Decision.copy_rows`), in order, and their count.
DECISION_COLUMNS: str
DECISION_FIELDS: int

def new_request_id() -> str:
    """A new request id, as the core makes one for a decision: a UUID v7 (time-ordered)."""

#: What goes before and after the tuples of a binary COPY stream.
COPY_HEADER: bytes
COPY_TRAILER: bytes

_Cells: TypeAlias = (
    npt.NDArray[np.float64]
    | npt.NDArray[np.int64]
    | npt.NDArray[np.bool_]
    | tuple[npt.NDArray[np.int32], list[str], bool]
    | str
)
__all__ = [
    "COPY_HEADER",
    "COPY_TRAILER",
    "DECISION_COLUMNS",
    "DECISION_FIELDS",
    "SCORE_BOUNDS",
    "Decision",
    "Endpoint",
    "FerroscoreError",
    "MalformedRequestError",
    "Model",
    "ModelLoadError",
    "Parsed",
    "PayloadTooLargeError",
    "RequestError",
    "SchemaError",
    "Spool",
    "SpoolFullError",
    "SpoolLockedError",
    "ValidationError",
    "__version__",
    "new_request_id",
]

class FerroscoreError(ValueError):
    """Base of every ferroscore error."""

class RequestError(FerroscoreError):
    """A request body was refused; `errors` lists every problem found, capped, each a dict
    with `pointer` (RFC 6901), `code` (stable) and `message`."""

    errors: list[dict[str, str]]

class MalformedRequestError(RequestError):
    """The body is not RFC 8259 JSON (HTTP 400)."""

class ValidationError(RequestError):
    """The records break the input schema (HTTP 422)."""

class PayloadTooLargeError(RequestError):
    """The body exceeds a configured limit (HTTP 413)."""

class SchemaError(FerroscoreError):
    """A registration document cannot be served: the input schema (also when it does not fit
    the model) or the thresholds. Raised by `Endpoint` with `pointer` (RFC 6901, into
    `document`), `document` ("schema" or "thresholds") and `message`."""

    pointer: str
    document: str
    message: str

class ModelLoadError(FerroscoreError):
    """A model artifact cannot be loaded. Past a load limit, the attribute `field` names where
    the file declares the count and `limit` the bound it broke; else both are None."""

class SpoolFullError(FerroscoreError):
    """The decision spool is at its limit or its disk is full: nothing may be acknowledged."""

class SpoolLockedError(FerroscoreError):
    """Another process holds the decision spool's directory."""

@final
class Model:
    """A loaded model: XGBoost JSON or a LightGBM text model, scored exactly as the
    reference library scores it."""

    @staticmethod
    def load(
        source: bytes | str | os.PathLike[str],
        format: str | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> Model:
        """Loads a model from its bytes or a file; `format` is detected when omitted. `limits`
        bounds what the file may declare (`features`, `outputs`, `trees`, `nodes`, `depth`,
        `categories`, `memory_bytes`); the defaults stand for any left out."""

    @property
    def n_features(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    @property
    def format(self) -> str: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def n_nodes(self) -> int: ...
    @property
    def objective(self) -> str: ...
    @property
    def feature_names(self) -> list[str] | None: ...
    @property
    def artifact(self) -> bytes:
        """The artifact's bytes, as loaded."""

    def __reduce__(self) -> tuple[Callable[[bytes], Model], tuple[bytes]]:
        """Pickles as the artifact's bytes; `ferroscore.models.pickling` rebuilds each artifact once
        per process, however many tasks carry it."""

    @property
    def column_kinds(self) -> list[str]:
        """How each input column is read: "numeric", "categorical", "both" or "unused"."""

    def predict(
        self,
        x: npt.NDArray[np.float64] | npt.NDArray[np.float32],
        output: Literal["response", "margin"] = "response",
        parallel: bool = True,
    ) -> npt.NDArray[np.float64]:
        """Scores a 2-D array (NaN = missing); 1-D result for single-output models. A C-ordered
        float64 array is read in place. Batches of 4096 rows or more are split over a thread
        pool (RAYON_NUM_THREADS threads, all cores by default) unless `parallel` is False."""

    def contributions(
        self, x: npt.NDArray[np.float64] | npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        """Exact TreeSHAP contributions laid out as xgboost's `pred_contribs`: (rows,
        features + 1), or (rows, outputs, features + 1); bias last; rows sum to the margin."""

@final
class Endpoint:
    """A served model version: its compiled input schema bound to its model."""

    def __new__(
        cls,
        name: str,
        version: int,
        model: Model,
        schema: str,
        *,
        max_body_bytes: int = ...,
        max_depth: int = ...,
        max_string_bytes: int = ...,
        max_features: int = ...,
        max_rows: int = ...,
        thresholds: str | None = None,
        classes: list[str] | None = None,
    ) -> Endpoint: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def model(self) -> Model: ...
    @property
    def schema(self) -> str: ...
    @property
    def thresholds(self) -> str | None: ...
    @property
    def classes(self) -> list[str] | None:
        """The class labels the answers name (the predicted `label` and the `probabilities`
        by label), if given."""
    def validate(self, body: str | bytes, *, ndjson: bool = False) -> int:
        """Parses and validates as `score` would, without scoring; returns the row count."""

    def score(
        self,
        body: str | bytes,
        *,
        ndjson: bool = False,
        partial: bool = False,
        explain: int = 0,
        request_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[bytes, Decision]:
        """Parses, validates and scores one record, a `{"rows": [...]}` batch or (`ndjson`)
        one record per line; returns the response JSON and the decision. Raises a
        RequestError subclass; with `partial`, a batch scores its valid rows instead. With
        `explain` (or the body's `"explain"`), each row carries its top reasons; with
        thresholds, its decision. `request_id` is generated unless given."""

    def prepare(self, body: str | bytes, *, ndjson: bool = False, partial: bool = False) -> Parsed:
        """Parses and validates a body as `score` does, leaving the scoring for later: the
        rows an enrichment hook completes (`Parsed.enrich`) before `Parsed.finish` scores
        them."""

    def stats(self) -> tuple[int, list[int], float, list[tuple[str, int]]]:
        """What this version has scored for callers in this process: `(rows, buckets, sum,
        decisions)`, buckets by `SCORE_BOUNDS` (not cumulative, a last above them)."""

    @property
    def logged_names(self) -> tuple[list[str], list[str]]:
        """The names of a logged row's `features` (in their order: the model's columns) and
        of its `context` keys; the registry keeps them once per version."""
    @property
    def enriched_features(self) -> list[tuple[str, bool]]:
        """The features enrichment supplies: `(name, required)` each, in model column
        order."""

    def score_table(
        self,
        columns: Sequence[tuple[str, _Cells, npt.NDArray[np.bool_] | None]],
        n_rows: int,
        *,
        first_row: int = 0,
        explain: int = 0,
        max_errors: int = 50,
        threads: int | None = None,
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.int32],
        npt.NDArray[np.int32],
        npt.NDArray[np.float64],
        list[tuple[str, str, str]],
        list[tuple[int, str, str, float | None]],
    ]:
        """Reads a table's columns by the schema and scores every row (see
        `ferroscore.offline.scorer`). `columns` are `(name, cells, nulls)`: `cells` a float64,
        int64 or bool array, `(int32 codes, words, text)`, or the name of a type no feature reads;
        `nulls` a bool array or None. Returns scores (rows x outputs, NaN where refused),
        whether each row is valid, each row's decision as its rule's index (-1: none), the
        model columns of its top reasons and their contributions (rows x explain; -1 and NaN
        past the last), the problems as `(pointer, code, message)`, at most `max_errors`, and
        the warnings as `(row, feature, code, bound)`, at most 1,000. Large tables are split
        over `threads` threads (default: the global pool)."""

@final
class Parsed:
    """A parsed request waiting for its enrichment, then scored once by `finish`."""

    @property
    def batch(self) -> bool:
        """A batch (rows or NDJSON) rather than one record."""

    @property
    def valid(self) -> list[int]:
        """The indexes of the valid rows, in order: the rows an enrichment supplies values
        for."""

    def records(self) -> list[tuple[int, str]]:
        """Each valid row as hooks read it: `(row_index, values_json)`."""

    def enrich(self, feature: str, values: list[object]) -> None:
        """Writes `values` (one per valid row, in order: None, bool, int, float or str) of an
        enriched feature, each checked by its rules; ValueError says which broke which."""

    def finish(
        self, *, explain: int = 0, request_id: str | None = None, reference: str | None = None
    ) -> tuple[bytes, Decision]:
        """Scores the rows and writes the response, as `Endpoint.score` would have: the
        response bytes and the decision to log. Once only."""

@final
class Decision:
    """One scored request, as the decision log records it."""

    @property
    def request_id(self) -> str: ...
    @property
    def reference(self) -> str | None:
        """The caller's own id for the request, if it gave one."""
    @property
    def model(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def scored_at_ns(self) -> int: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def valid(self) -> list[int]:
        """The indexes of the valid (scored) rows, in order."""
    @property
    def warned(self) -> bool:
        """Whether any value was scored with a warning (cheap: ask before `warnings`)."""
    @property
    def warnings(self) -> list[dict[str, Any]]:
        """The warnings, as the response lists them (`pointer`, `code`, `message`, and
        `bound` when there is one), each with its `row` and `feature` too."""

    def copy_rows(self, role: str = "champion", tenant: str = "default") -> bytes:
        """The scored rows as binary COPY tuples of `DECISION_COLUMNS` for the decisions
        table (no header or trailer: see `COPY_HEADER`, `COPY_TRAILER`)."""

    def rows(self) -> list[tuple[int, str, list[float], str | None]]:
        """The scored rows: `(row_index, features_json, scores, decision)`."""

    def records(self) -> list[tuple[int, str, list[float], str | None]]:
        """Each row as hooks read it: `(row_index, values_json, scores, decision)`, the
        values as the caller sent them (a category as its string, missing as null), valid
        rows only."""

    def inputs(self) -> npt.NDArray[np.float64]:
        """The model's input rows (rows x features, NaN = missing), every row of the
        request."""

    def with_decisions(self, decisions: list[str | None]) -> Decision:
        """This decision with `decisions` (one per row of the request) as the final
        decisions, in place of the thresholds': what the log records after a decision
        hook."""

@final
class Spool:
    """The decision spool: segment files of checksummed records in `directory`, held by one
    process. `durable`: a syncer thread group-commits what is appended (one write and one
    `fdatasync` per group, within `commit_window_us`); `append` returns once that covers the
    record, `append_nowait` at once with a ticket."""

    def __new__(
        cls,
        directory: str | os.PathLike[str],
        *,
        durable: bool,
        max_bytes: int,
        segment_bytes: int,
        commit_window_us: int = 0,
    ) -> Spool: ...
    def append(self, decision: Decision, role: str, tenant: str) -> None:
        """Records the decision's rows as COPY text; raises SpoolFullError at the limit."""
    def append_nowait(self, decision: Decision, role: str, tenant: str) -> int:
        """Records the rows without waiting for the disk; returns the ticket `decided` tells
        about (0 when buffered: nothing to wait for)."""
    def decided(self, ticket: int) -> bool:
        """Whether `ticket` is on disk (False: its group is still to be synced); raises its
        group's SpoolFullError or OSError if that failed."""
    @property
    def wake_fd(self) -> int | None:
        """The eventfd the syncer writes once per decided group (durable only)."""
    def seal(self) -> None:
        """Closes the active segment if it holds anything."""
    def sealed(self) -> list[int]:
        """The complete segments' ids, oldest first."""
    def read(self, id: int) -> tuple[bytes, int, int]:
        """`(rows as COPY text, records, torn_bytes)` of segment `id`."""
    def remove(self, id: int) -> None:
        """Removes segment `id` once its rows are committed."""
    @property
    def bytes(self) -> int: ...
    @property
    def directory(self) -> Path: ...
