"""The Open Inference Protocol (KServe V2) over REST, for clients built for Triton, KServe or
MLServer: health, server and model metadata, readiness, and inference with JSON tensors or
the binary tensor data extension.

An inference request is read into the records it stands for and handed to the score route,
so the schema's rules, the hooks, the shadow and the decision log apply exactly as to a
native batch; the answer is written back as output tensors. Inputs come as one tensor per
feature (`[rows]` or `[rows, 1]`, named by the schema: the form MLServer's pandas codec
sends) or as one `[rows, features]` tensor in the model's column order (what numpy-minded
clients send). Errors are `{"error": "..."}` with 400 or 404, the shape tritonclient reads
(`notes/inference-protocol-v2.md`)."""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import orjson

from ferroscore.models.catalog import Served
from ferroscore.models.inference import model_features
from ferroscore.pipeline import JSON_HEADERS, Call, Handler, Reply, digits, then
from ferroscore.serving.service import Service

#: Numeric tensor datatypes and their little-endian numpy types; BYTES is handled apart.
NUMPY_TYPES = {
    "BOOL": "|b1", "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
#: The tensor datatype each schema type is described with.
DATATYPES = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}
SCORE, DECISION, LABEL = "score", "decision", "label"
_HEADER_LENGTH = "inference-header-content-length"
_POINTER = re.compile(r"^/rows/(\d+)/features/(.+)$")
#: An error message names this many problems, then counts the rest.
_SHOWN_ERRORS = 5


class V2Error(Exception):
    """A request the protocol refuses: its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, message: str) -> Reply:
    return Reply(status, orjson.dumps({"error": message}), JSON_HEADERS)


def _json(payload: Any) -> Reply:
    return Reply(200, orjson.dumps(payload), JSON_HEADERS)


def server_metadata(_: Call) -> Reply:
    try:
        ours = version("ferroscore")
    except PackageNotFoundError:
        ours = "0"
    return _json({"name": "ferroscore", "version": ours, "extensions": ["binary_tensor_data"]})


def live(_: Call) -> Reply:
    return _json({"live": True})


def ready(service: Service) -> Handler:
    def handle(_: Call) -> Reply:
        if service.is_ready():
            return _json({"ready": True})
        return error(503, "not ready: the models are not loaded or the database is away")

    return handle


def model_metadata(service: Service) -> Handler:
    return _per_model(service, _metadata)


def model_ready(service: Service) -> Handler:
    return _per_model(service, lambda served: {"name": served.champion.name, "ready": True})


def model_config(service: Service) -> Handler:
    """Triton's model configuration, which perf_analyzer reads before it runs."""

    def config(served: Served) -> dict[str, Any]:
        meta = _metadata(served)
        return {"name": meta["name"], "max_batch_size": service.settings.max_rows,
                "input": [_config_tensor(t) for t in meta["inputs"]],
                "output": [_config_tensor(t) for t in meta["outputs"]]}  # fmt: skip

    return _per_model(service, config)


def _per_model(service: Service, answer: Callable[[Served], Any]) -> Handler:
    """A GET route about the model (and version) the path names: `answer` as JSON, or 404."""

    def handle(call: Call) -> Reply:
        try:
            return _json(answer(_served(service, call)))
        except V2Error as e:
            return error(e.status, str(e))

    return handle


def infer(service: Service, score: Handler) -> Handler:
    """`POST .../infer`: the request as a native batch through `score`, its answer as
    output tensors."""

    def handle(call: Call) -> Reply:
        try:
            served = _served(service, call)
            request, tensors = _read(call)
            rows = _records(served, tensors)
            wanted = _wanted_outputs(request)
        except V2Error as e:
            return error(e.status, str(e))
        body = orjson.dumps({"rows": [{"features": r} for r in rows]})
        params = {"name": served.champion.name}
        native_call = Call("POST", call.path, params, {}, {}, body, caller=call.caller,
                           defer_commit=call.defer_commit)  # fmt: skip
        # The inference request's "id" is the caller's reference, as a native body's is.
        given = request.get("id")
        if isinstance(given, str) and "\x00" in given:
            return error(400, '/id: the request "id" may not contain U+0000, which the '
                         "decision log cannot store (nul_character)")  # fmt: skip
        native_call.request_id = given if isinstance(given, str) and given else call.request_id

        # The native answer as output tensors, once it is there (after the model's hooks).
        def tensors_of(native: Reply) -> Reply:
            answer = orjson.loads(native.body)
            if native.status != 200:
                return error(400 if native.status == 422 else native.status, _message(answer))
            outputs = _outputs(answer, len(rows))
            unknown = [n for n in wanted if n not in outputs]
            if unknown:
                return error(400, f"unknown output {unknown[0]!r}; this model has "
                             f"{list(outputs)}")  # fmt: skip
            parameters: dict[str, Any] = {"request_id": answer["request_id"]}
            if "warnings" in answer:
                parameters["warnings"] = [_v2_warning(w) for w in answer["warnings"]]
            reply = _json({
                "model_name": served.champion.name,
                "model_version": str(served.champion.version),
                "id": request.get("id") or answer["request_id"],
                "parameters": parameters,
                "outputs": [outputs[n] for n in wanted or outputs],
            })  # fmt: skip
            reply.commit = native.commit
            return reply

        return then(score(native_call), tensors_of)

    return handle


def _served(service: Service, call: Call) -> Served:
    name = call.params["name"]
    served = service.catalog.of(call.tenant).get(name)
    if served is None:
        raise V2Error(404, f"no active model named {name!r}")
    asked = call.params.get("version")
    if asked is not None and asked != str(served.champion.version):
        raise V2Error(
            404, f"version {asked} of {name!r} is not served; version "
            f"{served.champion.version} is",
        )  # fmt: skip
    return served


def _metadata(served: Served) -> dict[str, Any]:
    endpoint = served.champion
    schema = served.schema
    enriched = {name for name, _ in endpoint.enriched_features}
    inputs = []
    # Model columns in order, then context fields (jsonb, where schemas are stored, keeps
    # no key order).
    columns = model_features(schema)
    ordered = sorted(columns.items(), key=lambda f: f[1]["x-ferroscore-column"])
    ordered += [(n, spec) for n, spec in schema["properties"].items() if n not in columns]
    for name, spec in ordered:
        if name in enriched:
            continue
        types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        kind = next(t for t in types if t != "null")
        inputs.append({"name": name, "datatype": DATATYPES[kind], "shape": [-1, 1]})
    n = endpoint.model.n_outputs
    outputs = [{"name": SCORE, "datatype": "FP64", "shape": [-1] if n == 1 else [-1, n]}]
    if endpoint.thresholds:
        outputs.append({"name": DECISION, "datatype": "BYTES", "shape": [-1]})
    meta: dict[str, Any] = {
        "name": endpoint.name, "versions": [str(endpoint.version)],
        "platform": f"ferroscore_{endpoint.model.format}", "inputs": inputs, "outputs": outputs,
    }  # fmt: skip
    if endpoint.classes:
        # The predicted class, and which class each column of the score is.
        outputs.append({"name": LABEL, "datatype": "BYTES", "shape": [-1]})
        meta["parameters"] = {"labels": endpoint.classes}
    return meta


def _config_tensor(t: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": t["name"], "data_type": f"TYPE_{t['datatype'].replace('BYTES', 'STRING')}",
            "dims": [d for d in t["shape"][1:]] or [1]}  # fmt: skip


def _read(call: Call) -> tuple[dict[str, Any], list[tuple[str, list[int], list[Any]]]]:
    """The request's JSON part and its input tensors as `(name, shape, flat values)`."""
    raw = call.body_bytes()
    length = call.headers.get(_HEADER_LENGTH)
    if length is not None:
        if not digits(length) or int(length) > len(raw):
            raise V2Error(400, f"{_HEADER_LENGTH} {length!r} does not fit a {len(raw)}-byte body")
        header, binary = raw[: int(length)], memoryview(raw)[int(length) :]
    else:
        header, binary = raw, memoryview(b"")
    try:
        request = orjson.loads(header)
    except orjson.JSONDecodeError as e:
        raise V2Error(400, f"malformed JSON: {e}") from None
    if not isinstance(request, dict):
        raise V2Error(400, 'the request is a JSON object with "inputs"')
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise V2Error(400, '"inputs" must be a non-empty list of tensors')
    tensors = []
    offset = 0
    for i, tensor in enumerate(inputs):
        name, shape, values, used = _tensor(i, tensor, binary[offset:])
        offset += used
        tensors.append((name, shape, values))
    if offset != len(binary):
        raise V2Error(400, f"{len(binary) - offset} bytes of binary data belong to no input")
    return request, tensors


def _tensor(i: int, t: Any, binary: memoryview) -> tuple[str, list[int], list[Any], int]:
    """One input tensor: its name, shape, flat values (NaN as None) and the binary bytes it
    took."""
    if not isinstance(t, dict):
        raise V2Error(400, f"input {i} is not an object")
    name, shape, datatype = t.get("name"), t.get("shape"), t.get("datatype")
    if not isinstance(name, str):
        raise V2Error(400, f'input {i} has no "name"')
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise V2Error(400, f'input {name!r}: "shape" must be a list of sizes')
    if not isinstance(datatype, str) or (datatype != "BYTES" and datatype not in NUMPY_TYPES):
        raise V2Error(400, f"input {name!r}: datatype {datatype!r} is not supported")
    count = math.prod(shape)
    parameters = t.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise V2Error(400, f'input {name!r}: "parameters" must be an object')
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or size > len(binary):
            raise V2Error(400, f"input {name!r}: binary_data_size {size!r} exceeds the body")
        values = _from_binary(name, datatype, bytes(binary[:size]), count)
        used = size
    else:
        if "data" not in t:
            raise V2Error(400, f'input {name!r} has neither "data" nor binary data')
        values = _from_json(name, datatype, t["data"])
        used = 0
    if len(values) != count:
        raise V2Error(400, f"input {name!r}: {len(values)} values for shape {shape}")
    return name, shape, values, used


def _from_binary(name: str, datatype: str, data: bytes, count: int) -> list[Any]:
    if datatype == "BYTES":
        words, at = [], 0
        while at < len(data):
            if at + 4 > len(data):
                raise V2Error(400, f"input {name!r}: a truncated BYTES element")
            (n,) = struct.unpack_from("<I", data, at)
            words.append(_text(name, data[at + 4 : at + 4 + n]))
            at += 4 + n
        return words
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if len(data) != count * dtype.itemsize:
        raise V2Error(400, f"input {name!r}: {len(data)} bytes for {count} {datatype} values")
    return _plain(np.frombuffer(data, dtype))


def _from_json(name: str, datatype: str, data: Any) -> list[Any]:
    flat = list(_flatten(data))
    if datatype == "BYTES":
        if not all(isinstance(w, str) for w in flat):
            raise V2Error(400, f"input {name!r}: BYTES data must be strings")
        return flat
    try:
        values = np.asarray(flat, dtype=NUMPY_TYPES[datatype])
    except (TypeError, ValueError, OverflowError):
        raise V2Error(400, f"input {name!r}: the data are not {datatype} values") from None
    return _plain(values)


def _flatten(data: Any) -> Any:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _plain(values: np.ndarray) -> list[Any]:
    """Python values as a native request holds them: floats as float64 (exact for FP32),
    NaN as None (a missing value)."""
    if values.dtype.kind == "f":
        return [None if math.isnan(x) else x for x in values.astype(np.float64).tolist()]
    return values.tolist()  # type: ignore[no-any-return]


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise V2Error(400, f"input {name!r}: a BYTES element is not UTF-8 text") from None


def _records(served: Served, tensors: Sequence[tuple[str, list[int], list[Any]]]) -> list[Any]:
    """The records the tensors stand for: one `[rows, features]` tensor in model column
    order, or one tensor per feature."""
    endpoint = served.champion
    schema = served.schema
    if len(tensors) == 1 and len(tensors[0][1]) == 2 and tensors[0][0] not in schema["properties"]:
        enriched = {n for n, _ in endpoint.enriched_features}
        in_order = sorted(model_features(schema).items(), key=lambda f: f[1]["x-ferroscore-column"])
        return _matrix_records(tensors[0], [f for f, _ in in_order if f not in enriched])
    return _column_records(tensors)


def _matrix_records(tensor: tuple[str, list[int], list[Any]], callers: list[str]) -> list[Any]:
    name, (n_rows, width), values = tensor
    if width != len(callers):
        raise V2Error(400, f"input {name!r} has {width} columns; this model reads "
                           f"{len(callers)} from callers: {callers}")  # fmt: skip
    return [dict(zip(callers, values[r * width : (r + 1) * width], strict=True))
            for r in range(n_rows)]  # fmt: skip


def _column_records(tensors: Sequence[tuple[str, list[int], list[Any]]]) -> list[Any]:
    rows: set[int] = set()
    for name, shape, _ in tensors:
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise V2Error(400, f"input {name!r}: a feature's tensor is [rows] or [rows, 1], "
                               f"not {shape}")  # fmt: skip
        rows.add(shape[0])
    if len(rows) > 1:
        raise V2Error(400, f"the inputs have different numbers of rows: {sorted(rows)}")
    names = [name for name, _, _ in tensors]
    return [dict(zip(names, row, strict=True))
            for row in zip(*(values for _, _, values in tensors), strict=True)]  # fmt: skip


def _v2_warning(w: Mapping[str, Any]) -> dict[str, Any]:
    """A native warning (pointer `/rows/{i}/features/{name}`) as V2 clients read it: the
    row of the batch and the feature by name, with its code, message and bound."""
    _, _, row, _, name = w["pointer"].split("/", 4)
    out = {"row": int(row), "feature": name.replace("~1", "/").replace("~0", "~"),
           "code": w["code"], "message": w["message"]}  # fmt: skip
    if "bound" in w:
        out["bound"] = w["bound"]
    return out


def _wanted_outputs(request: Mapping[str, Any]) -> list[str]:
    asked = request.get("outputs") or []
    if not isinstance(asked, list) or not all(isinstance(o, dict) for o in asked):
        raise V2Error(400, '"outputs" must be a list of objects with a "name"')
    return [str(o.get("name")) for o in asked]


def _outputs(answer: Mapping[str, Any], n_rows: int) -> dict[str, dict[str, Any]]:
    scores = answer["scores"]
    multi = bool(scores) and isinstance(scores[0], list)
    flat = [x for row in scores for x in row] if multi else scores
    shape = [n_rows, len(scores[0])] if multi else [n_rows]
    out = {SCORE: {"name": SCORE, "datatype": "FP64", "shape": shape, "data": flat}}
    if "decisions" in answer:
        decisions = answer["decisions"]
        out[DECISION] = {"name": DECISION, "datatype": "BYTES", "shape": [n_rows],
                         "data": decisions}  # fmt: skip
    if "labels" in answer:
        out[LABEL] = {"name": LABEL, "datatype": "BYTES", "shape": [n_rows],
                      "data": answer["labels"]}  # fmt: skip
    return out


def _message(answer: Mapping[str, Any]) -> str:
    """The native error as one line, each field named by its input and row."""
    errors = answer.get("errors") or []
    parts = []
    for e in errors[:_SHOWN_ERRORS]:
        found = _POINTER.match(e.get("pointer", ""))
        where = f"input {found[2]!r}, row {found[1]}" if found else e.get("pointer") or "request"
        parts.append(f"{where}: {e['message']} ({e['code']})")
    if len(errors) > _SHOWN_ERRORS:
        parts.append(f"and {len(errors) - _SHOWN_ERRORS} more")
    return "; ".join(parts) or answer.get("message", "refused")
