"""`Scorer`: a model version scoring whole tables — Arrow record batches and tables, pandas
DataFrames — with the service's schema rules, error codes and thresholds, and the same engine.

Each Arrow column reaches the Rust core as a NumPy view of its buffers (a copy only where the
layout differs, such as bit-packed booleans); strings are dictionary-encoded first, so each
distinct string is checked once and no row becomes a Python object. A `Scorer` pickles as its
artifact's bytes and is rebuilt once per process, which is what Ray, Dask and Spark workers
need.

    >>> scorer = Scorer(Model.load("model.json"), schema, thresholds, explain=3)
    >>> scored = scorer.score(pyarrow.parquet.read_table("applications.parquet"))
    >>> scored.table  # the input's own columns, score, decision, reason_1, ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferroscore._core import Endpoint, Model, ValidationError
from ferroscore.models.inference import model_features
from ferroscore.models.pickling import cached

if TYPE_CHECKING:
    import pandas as pd

#: Problems listed when a table is refused (as the service lists them for a request).
MAX_ERRORS = 50

#: Column names the scorer writes; an input column of one of these names is not carried.
SCORE = "score"
DECISION = "decision"
LABEL = "label"
ERROR = "error"
#: Per row, what was scored with a warning (JSON: a list of `{feature, code[, bound]}`), null
#: when nothing; written when the schema can warn (training ranges, unknown categories scored
#: as missing).
WARNINGS = "warnings"


class RowError(NamedTuple):
    """One problem in one row: `row` counts from the first row of the whole input."""

    row: int
    pointer: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.code} at {self.pointer}: {self.message}"


@dataclass(frozen=True)
class ScoredTable:
    """A scored table: the kept input columns and the outputs, row for row; `valid` says
    which rows passed (the others have null outputs); `errors` lists their problems."""

    table: pa.Table
    valid: np.ndarray
    errors: list[RowError]


class Scorer:
    """A model with its input schema and thresholds, for tables.

    `model` is a `Model`, its artifact's bytes or a path. `schema` (JSON text or a dict)
    defaults to the model's open schema: each input column a nullable number, or a string
    where the model stored its categories. `thresholds` (JSON text or a list of rules) add a
    decision. `explain` asks for that many reasons per row. `keep` names the input columns
    carried into the output; by default, every column the schema does not read (ids,
    labels). `threads` sizes the pool a large table is split over (default: all cores).
    `labels` name the classes the scores are of: the output then has each class's score as
    `score_<label>` (a multiclass model's) and the predicted class as `label`."""

    def __init__(
        self,
        model: Model | bytes | str | os.PathLike[str],
        schema: str | Mapping[str, Any] | None = None,
        thresholds: str | Sequence[Mapping[str, Any]] | None = None,
        *,
        explain: int = 0,
        keep: Sequence[str] | None = None,
        threads: int | None = None,
        name: str = "offline",
        version: int = 0,
        labels: Sequence[str] | None = None,
    ) -> None:
        loaded = model if isinstance(model, Model) else Model.load(model)
        if schema is None:
            from ferroscore.models.inference import open_schema

            schema = open_schema(loaded)
        schema_text = schema if isinstance(schema, str) else json.dumps(schema)
        thresholds_text = (
            thresholds
            if thresholds is None or isinstance(thresholds, str)
            else json.dumps(list(thresholds))
        )
        classes = list(labels) if labels else None
        self.endpoint = Endpoint(name, version, loaded, schema_text, thresholds=thresholds_text,
                                 classes=classes)  # fmt: skip
        self.explain = max(0, explain)
        self.keep = None if keep is None else list(keep)
        self.threads = threads
        properties = model_features(json.loads(schema_text))
        #: The features the schema reads, by name, with their specs.
        self.features = properties
        by_column = [""] * loaded.n_features
        for feature, spec in properties.items():
            by_column[spec["x-ferroscore-column"]] = feature
        self._feature_of_column = pa.array(by_column, pa.string())
        self._decisions = pa.array(
            [r["decision"] for r in json.loads(thresholds_text)] if thresholds_text else [],
            pa.string(),
        )
        n = loaded.n_outputs
        #: The score columns: `score`, or `score_0`, `score_1`, ... for several outputs.
        self.score_columns = [SCORE] if n == 1 else [f"{SCORE}_{i}" for i in range(n)]
        if classes and n > 1:
            self.score_columns = [f"{SCORE}_{label}" for label in classes]
        self._classes = pa.array(classes or [], pa.string())
        #: Whether the schema flags values rather than refusing them, so that the output has
        #: a `warnings` column.
        self.warns = any(
            "x-ferroscore-training-range" in spec
            or spec.get("x-ferroscore-unknown-category") == "missing"
            for spec in properties.values()
        )

    @property
    def model(self) -> Model:
        return self.endpoint.model

    def output_columns(self) -> list[str]:
        """The names the scorer writes, in order."""
        names = list(self.score_columns)
        if self.endpoint.thresholds is not None:
            names.append(DECISION)
        if self.endpoint.classes:
            names.append(LABEL)
        for k in range(1, self.explain + 1):
            names += [f"reason_{k}", f"reason_{k}_contribution"]
        if self.warns:
            names.append(WARNINGS)
        return names

    def score(
        self,
        data: pa.Table | pa.RecordBatch | pd.DataFrame,
        *,
        first_row: int = 0,
        partial: bool = False,
        text: bool = False,
    ) -> ScoredTable:
        """Checks and scores every row. A row that breaks the schema raises
        `ValidationError` (its `errors` as the service lists them, rows counted from
        `first_row`); with `partial`, the table is scored and such rows get null outputs.
        With `text`, string columns are untyped text (a CSV file's), each value read as its
        feature's type: `"12.5"` as a number, `"true"` as a boolean."""
        table = as_table(data)
        n = table.num_rows
        kept = self._kept(table.column_names)
        columns = [
            (name, *cells(table.column(name), text=text))
            for name in self.features
            if name in table.column_names
        ]
        cap = n * max(len(self.features), 1) if partial else MAX_ERRORS
        scores, valid, decisions, reasons, contributions, problems, warned = (
            self.endpoint.score_table(
                columns,
                n,
                first_row=first_row,
                explain=self.explain,
                max_errors=cap,
                threads=self.threads,
            )
        )
        errors = [RowError(int(p.split("/", 3)[2]), p, c, m) for p, c, m in problems]
        if errors and not partial:
            raise refused(errors, int((~valid).sum()))
        refused_rows = ~valid
        out: dict[str, pa.Array] = {name: table.column(name) for name in kept}
        for j, name in enumerate(self.score_columns):
            out[name] = pa.array(np.ascontiguousarray(scores[:, j]), mask=refused_rows)
        if self.endpoint.thresholds is not None:
            out[DECISION] = _dictionary(decisions, self._decisions)
        if self.endpoint.classes:
            out[LABEL] = _dictionary(_predicted(scores, valid), self._classes)
        for k in range(reasons.shape[1]):
            out[f"reason_{k + 1}"] = _dictionary(reasons[:, k], self._feature_of_column)
            out[f"reason_{k + 1}_contribution"] = pa.array(
                np.ascontiguousarray(contributions[:, k]), mask=reasons[:, k] < 0
            )
        if self.warns:
            out[WARNINGS] = _warnings_column(warned, n, first_row)
        return ScoredTable(pa.table(out), valid, errors)

    def output_schema(self, data: pa.Schema) -> pa.Schema:
        """The columns `score_arrow` gives for input columns `data` (for Spark's mapInArrow,
        Dask's meta)."""
        return self.score_arrow(data.empty_table()).schema

    def score_arrow(self, data: pa.Table | pa.RecordBatch, *, partial: bool = False) -> pa.Table:
        """`score` as engines use it (Ray Data's `map_batches`): the outputs as a table of
        plain columns (no dictionaries). With `partial`, a refused row gets null outputs and
        an `error` column its first problem; otherwise it raises `ValidationError`."""
        scored = self.score(data, partial=partial)
        table = scored.table
        if partial:
            first: list[str | None] = [None] * table.num_rows
            for e in reversed(scored.errors):
                first[e.row] = f"{e.code} at {e.pointer}: {e.message}"
            table = table.append_column(ERROR, pa.array(first, pa.string()))
        return plain(table)

    def score_batches(
        self, batches: Iterable[pa.RecordBatch], *, partial: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """`score_arrow` over record batches, batch for batch: Spark's `mapInArrow`."""
        for batch in batches:
            yield from self.score_arrow(batch, partial=partial).to_batches()

    def score_pandas(self, frame: pd.DataFrame, *, partial: bool = False) -> pd.DataFrame:
        """`score_arrow` for a pandas DataFrame, as Dask's `map_partitions` and Spark's
        pandas UDFs hand them; the frame's index is kept."""
        out = self.score_arrow(as_table(frame), partial=partial).to_pandas()
        out.index = frame.index
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        state = (
            self.endpoint.schema,
            self.endpoint.thresholds,
            self.explain,
            None if self.keep is None else tuple(self.keep),
            self.threads,
            self.endpoint.name,
            self.endpoint.version,
            self.endpoint.classes,
        )
        return (restore_scorer, (self.model.artifact, *state))

    def _kept(self, names: Sequence[str]) -> list[str]:
        outputs = set(self.output_columns())
        if self.keep is not None:
            missing = [k for k in self.keep if k not in names]
            if missing:
                raise ValueError(f"the input has no column {missing[0]!r} to keep")
            clash = [k for k in self.keep if k in outputs]
            if clash:
                raise ValueError(f"the kept column {clash[0]!r} is also an output's name")
            return list(self.keep)
        return [n for n in names if n not in self.features and n not in outputs]


def _predicted(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each row's most probable class, as an index into the labels (-1: refused): the
    largest score of a multiclass model's, or p >= 0.5 of a model with one probability."""
    if scores.shape[1] == 1:
        best = (scores[:, 0] >= 0.5).astype(np.int32)
    else:
        best = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1).astype(np.int32)
    return np.where(valid, best, -1).astype(np.int32)


def _warnings_column(
    warned: list[tuple[int, str, str, float | None]], n: int, first_row: int
) -> pa.Array:
    """Each row's warnings as JSON text (as the decision log keeps them), null for none."""
    rows: list[list[dict[str, Any]] | None] = [None] * n
    for row, feature, code, bound in warned:
        entry: dict[str, Any] = {"feature": feature, "code": code}
        if bound is not None:
            entry["bound"] = bound
        found = rows[row - first_row]
        if found is None:
            rows[row - first_row] = [entry]
        else:
            found.append(entry)
    return pa.array([None if r is None else json.dumps(r) for r in rows], pa.string())


def restore_scorer(artifact: bytes, *state: Any) -> Scorer:
    """Unpickles a `Scorer`, built once per process for the same artifact and settings."""
    schema, thresholds, explain, keep, threads, name, version, labels = state

    def build() -> Scorer:
        return Scorer(
            Model.load(artifact),
            schema,
            thresholds,
            explain=explain,
            keep=keep,
            threads=threads,
            name=name,
            version=version,
            labels=labels,
        )

    return cached(artifact, state, build)


def refused(errors: Sequence[RowError], rows: int) -> ValidationError:
    """The error a strict run stops with: the first problem and the count of refused `rows`
    in the message, the problems found (capped at MAX_ERRORS) in `errors`."""
    e = ValidationError(f"{errors[0]} ({rows} row{'s' if rows > 1 else ''} refused)")
    e.errors = [{"pointer": x.pointer, "code": x.code, "message": x.message} for x in errors]
    return e


def as_table(data: pa.Table | pa.RecordBatch | pd.DataFrame) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    return pa.Table.from_pandas(data, preserve_index=False)


def cells(column: pa.ChunkedArray | pa.Array, *, text: bool) -> tuple[Any, np.ndarray | None]:
    """One column as `Endpoint.score_table` reads it: `(cells, nulls)`. `text` marks string
    columns as untyped text (a CSV file's), read as their feature's type."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    t = array.type
    nulls = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    if pa.types.is_dictionary(t) and not _is_text(t.value_type):
        return cells(array.dictionary_decode(), text=text)
    if pa.types.is_dictionary(t) or _is_text(t):
        encoded = array if pa.types.is_dictionary(t) else pc.dictionary_encode(array)
        codes = pc.fill_null(encoded.indices.cast(pa.int32()), -1).to_numpy()
        words = encoded.dictionary.cast(pa.string()).to_pylist()
        return (codes, [w if w is not None else "" for w in words], text), nulls
    if pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        return array.cast(pa.float64()).to_numpy(zero_copy_only=False), None
    if pa.types.is_integer(t):
        try:
            values = array.cast(pa.int64())
        except pa.ArrowInvalid:
            return f"{t} beyond the int64 range", nulls
        return pc.fill_null(values, 0).to_numpy(), nulls
    if pa.types.is_boolean(t):
        return pc.fill_null(array, False).to_numpy(zero_copy_only=False), nulls
    return str(t), nulls


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t))


def _is_string_view(t: pa.DataType) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check is not None and check(t))


def plain(table: pa.Table) -> pa.Table:
    """`table` with its dictionary columns (decisions, reasons) decoded to their values."""
    fields = [
        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def _dictionary(indices: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.ascontiguousarray(indices), mask=indices < 0), dictionary
    )
