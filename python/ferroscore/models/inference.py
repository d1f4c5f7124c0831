"""Input schemas inferred from a model and its training data (Parquet or CSV, read with
pyarrow): one feature per model column, typed from the data, bounded by the data's range
widened by a margin, categorical vocabularies mapped to the codes the model was trained with,
nullable where the data has missing values. Also the reference profile (per-feature and score
distributions) that drift monitoring compares live traffic with."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ferroscore._core import Model

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
PROFILE_BINS = 10


#: The keyword of a number's training range (see the core's schema).
TRAINING_RANGE = "x-ferroscore-training-range"


class InferenceError(ValueError):
    """The data cannot describe the model's inputs."""


@dataclass(frozen=True)
class Options:
    #: Bounds are the data's range widened by this share of it on each side; None: no bounds.
    margin: float | None = 0.0
    #: Hard bounds (`minimum`/`maximum`: a value outside is refused) rather than the training
    #: range (`x-ferroscore-training-range`: a value outside is scored, with a warning).
    hard_bounds: bool = False
    #: What a category the data never showed does: "missing" (score as missing) or "error".
    unknown_category: str = "missing"
    #: Data columns that are not model inputs (the label, ids) when the model names none.
    exclude: Sequence[str] = ()


def read_table(path: Path) -> pa.Table:
    """A Parquet file or directory, or a CSV file, as an Arrow table."""
    if path.suffix.lower() in (".csv", ".txt") or path.name.endswith(".csv.gz"):
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    import pyarrow.parquet as pq

    return pq.read_table(path)


def feature_columns(model: Model, table: pa.Table, exclude: Sequence[str]) -> list[str]:
    """The data column feeding each model column: by the model's feature names, or in order."""
    names = model.feature_names
    if names is not None:
        missing = [n for n in names if n not in table.column_names]
        if missing:
            raise InferenceError(
                f"the data has no column {missing[0]!r}, which the model reads"
                f" ({len(missing)} of {len(names)} missing)"
            )
        return list(names)
    columns = [c for c in table.column_names if c not in set(exclude)]
    if len(columns) != model.n_features:
        raise InferenceError(
            f"the model names no features and reads {model.n_features} columns, but the data has"
            f" {len(columns)} (after --exclude): exclude the label and id columns"
        )
    return columns


def trained_vocabularies(artifact: bytes) -> dict[int, list[str]]:
    """The category lists the training library stored in the artifact, by model column: the
    codes it was trained with, whatever order the data at hand lists them in. LightGBM keeps
    pandas' categories (`pandas_categorical`, one list per categorical column in order);
    xgboost >= 3.1 keeps them in its JSON (`cats`). Empty when the artifact has none."""
    if artifact.startswith(b"tree"):
        return _lightgbm_vocabularies(artifact.decode(errors="replace"))
    if artifact.lstrip().startswith(b"{"):
        try:
            document = json.loads(artifact)
        except ValueError:
            return {}
        booster = document.get("learner", {}).get("gradient_booster", {})
        model = booster.get("model") or booster.get("gbtree", {}).get("model", {})
        encodings = (model.get("cats") or {}).get("enc") or []
        found = {}
        for column, enc in enumerate(encodings):
            offsets, values = enc.get("offsets") or [], bytes(enc.get("values") or [])
            if offsets:
                found[column] = [values[a:b].decode() for a, b in pairwise(offsets)]
        return found
    return {}


def _lightgbm_vocabularies(text: str) -> dict[int, list[str]]:
    infos = next((line for line in text.splitlines() if line.startswith("feature_infos=")), "")
    marker = "\npandas_categorical:"
    if marker not in text:
        return {}
    lists = json.loads(text.rsplit(marker, 1)[1].splitlines()[0] or "null") or []
    # Categorical columns list their categories ("-1:2:3:0:1"); numeric ones a "[min:max]".
    columns = [
        i for i, info in enumerate(infos.removeprefix("feature_infos=").split())
        if not info.startswith("[") and info != "none"
    ]  # fmt: skip
    return {c: [str(w) for w in words] for c, words in zip(columns, lists, strict=False)}


def _vocabulary(column: pa.ChunkedArray) -> dict[str, int]:
    """Category → code as pandas (and so xgboost and LightGBM) numbered them in training: a
    dictionary (pandas category) column's own order, else the sorted distinct values."""
    if pa.types.is_dictionary(column.type):
        combined = column.unify_dictionaries() if column.num_chunks > 1 else column
        words = combined.chunk(0).dictionary.to_pylist() if combined.num_chunks else []
    else:
        words = sorted(pc.unique(column.drop_null()).to_pylist())
    return {str(w): i for i, w in enumerate(words)}


def _bounds(column: pa.ChunkedArray, margin: float, integer: bool, hard: bool) -> dict[str, Any]:
    """The data's range, widened by `margin`: hard bounds, or the training range whose
    outside is scored with an `out_of_training_range` warning (next year's data is not an
    outage)."""
    values = column.drop_null()
    if pa.types.is_floating(column.type):
        values = pc.filter(values, pc.invert(pc.is_nan(values)))
    if len(values) == 0:
        return {}
    lo, hi = (float(v) for v in pc.min_max(values).values())
    pad = (hi - lo) * margin
    lo, hi = lo - pad, hi + pad
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
    # 0 stays 0 when the data never goes below it: counts and amounts are never negative.
    if margin and lo < 0 <= float(pc.min(values).as_py()):
        lo = 0
    if not hard:
        return {TRAINING_RANGE: [_plain(lo), _plain(hi)]}
    return {"minimum": _plain(lo), "maximum": _plain(hi)}


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def class_labels(table: pa.Table, target: str) -> list[str]:
    """The classes of the label column `target`, in the order the model's outputs are: a
    categorical (dictionary) column's own order, else its distinct values sorted (as
    scikit-learn's LabelEncoder and LightGBM's integer classes order them)."""
    if target not in table.column_names:
        raise InferenceError(f"the data has no column {target!r}")
    column = table.column(target)
    if pa.types.is_dictionary(column.type):
        combined = column.unify_dictionaries() if column.num_chunks > 1 else column
        words = combined.chunk(0).dictionary.to_pylist() if combined.num_chunks else []
    else:
        words = sorted(pc.unique(column.drop_null()).to_pylist())
    if len(words) < 2:
        raise InferenceError(f"the column {target!r} has fewer than two classes")
    return [str(w) for w in words]


def _has_missing(column: pa.ChunkedArray) -> bool:
    if column.null_count:
        return True
    if pa.types.is_floating(column.type):
        return bool(pc.any(pc.is_nan(column)).as_py())
    return False


def infer_schema(
    model: Model, table: pa.Table, options: Options | None = None, artifact: bytes | None = None
) -> dict[str, Any]:
    """The input schema of `model` inferred from its training `table`. With the model's
    `artifact`, the category codes it stored (see `trained_vocabularies`) take precedence
    over the data's."""
    o = options or Options()
    trained = trained_vocabularies(artifact) if artifact is not None else {}
    if o.unknown_category not in ("missing", "error"):
        raise InferenceError("unknown_category is 'missing' or 'error'")
    columns = feature_columns(model, table, o.exclude)
    kinds = model.column_kinds
    properties: dict[str, Any] = {}
    required: list[str] = []
    for i, name in enumerate(columns):
        column = table.column(name)
        t = column.type
        spec: dict[str, Any]
        categorical = kinds[i] in ("categorical", "both")
        if (
            categorical
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or (pa.types.is_dictionary(t))
        ):
            vocabulary = (
                {w: code for code, w in enumerate(trained[i])}
                if i in trained
                else _vocabulary(column)
            )
            if not vocabulary:
                raise InferenceError(f"column {name!r} has no values to learn its categories from")
            spec = {"type": "string", "x-ferroscore-categories": vocabulary}
            spec["x-ferroscore-unknown-category"] = o.unknown_category
        elif pa.types.is_boolean(t):
            spec = {"type": "boolean"}
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            integer = pa.types.is_integer(t)
            spec = {"type": "integer" if integer else "number"}
            if o.margin is not None:
                spec.update(_bounds(column, o.margin, integer, o.hard_bounds))
        else:
            raise InferenceError(f"column {name!r} has type {t}, which no feature type fits")
        if _has_missing(column):
            spec["type"] = [spec["type"], "null"]
        else:
            required.append(name)
        spec["x-ferroscore-column"] = i
        properties[name] = spec
    return {
        "$schema": SCHEMA_URI,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def open_schema(model: Model, data: pa.Schema | None = None) -> dict[str, Any]:
    """The schema of a model that comes without one: a feature per column the model reads,
    named as the model names it (`f0`, `f1`, ... otherwise), nullable and unbounded; a string
    of the model's own categories where it stored them (others score as missing), else typed
    as the columns of `data` (a boolean, an integer) or a number."""
    trained = trained_vocabularies(model.artifact)
    names = model.feature_names or [f"f{i}" for i in range(model.n_features)]
    properties: dict[str, Any] = {}
    for i, (name, kind) in enumerate(zip(names, model.column_kinds, strict=True)):
        if kind == "unused":
            continue
        t = data.field(name).type if data is not None and name in data.names else pa.float64()
        spec: dict[str, Any] = {"type": [_open_type(t), "null"]}
        if i in trained:
            spec = {
                "type": ["string", "null"],
                "x-ferroscore-categories": {w: code for code, w in enumerate(trained[i])},
                "x-ferroscore-unknown-category": "missing",
            }
        properties[name] = {**spec, "x-ferroscore-column": i}
    return {"$schema": SCHEMA_URI, "type": "object", "properties": properties}


def _open_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    return "integer" if pa.types.is_integer(t) else "number"


def model_features(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema's properties the model reads (each bound to a column), by name: without
    its context fields (`"x-ferroscore-source": "context"`), which no model input holds."""
    return {n: s for n, s in schema["properties"].items() if "x-ferroscore-column" in s}


def model_inputs(schema: dict[str, Any], table: pa.Table, n_features: int) -> np.ndarray:
    """The training rows as the model reads them (float64, NaN = missing), through `schema`."""
    x = np.full((table.num_rows, n_features), np.nan)
    for name, spec in model_features(schema).items():
        column = table.column(name)
        codes = spec.get("x-ferroscore-categories")
        if codes is not None:
            words = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
            x[:, spec["x-ferroscore-column"]] = [
                codes.get(w, np.nan) if w is not None else np.nan for w in words.to_pylist()
            ]
        else:
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            x[:, spec["x-ferroscore-column"]] = values
    return x


def _distribution(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    out: dict[str, Any] = {"missing_rate": 1 - len(present) / max(len(values), 1)}
    if len(present):
        edges = np.unique(np.quantile(present, np.linspace(0, 1, PROFILE_BINS + 1)))
        counts = np.histogram(present, bins=edges)[0] if len(edges) > 1 else np.array([1])
        out["edges"] = edges.tolist()
        out["proportions"] = (counts / counts.sum()).tolist()
    return out


def reference_profile(model: Model, schema: dict[str, Any], table: pa.Table) -> dict[str, Any]:
    """Per-feature and score distributions of the training data: decile bins for numbers,
    frequencies for categories, and the missing rate of each."""
    x = model_inputs(schema, table, model.n_features)
    features: dict[str, Any] = {}
    for name, spec in model_features(schema).items():
        values = x[:, spec["x-ferroscore-column"]]
        codes = spec.get("x-ferroscore-categories")
        if "boolean" in spec["type"]:
            codes = {"false": 0, "true": 1}
        if codes is not None:
            present = values[~np.isnan(values)]
            freq = {
                w: float(np.mean(present == c)) if len(present) else 0.0 for w, c in codes.items()
            }
            features[name] = {
                "missing_rate": 1 - len(present) / max(len(values), 1),
                "frequencies": freq,
            }
        else:
            features[name] = _distribution(values)
    scores = model.predict(x)
    score = _distribution(scores if scores.ndim == 1 else scores.max(axis=1))
    return {"rows": table.num_rows, "features": features, "score": score}
