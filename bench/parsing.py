"""Parse + validate a feature record, side by side in one process: ferroscore's Rust core
(`Endpoint.validate`, no scoring) against orjson + msgspec and against Pydantic v2, on the
demo schema (30 numbers >= 0, all required, no unknown keys). Medians and ratios; writes
bench/results/parse.md. Run: make bench-parse."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson
import pydantic
from sklearn.datasets import load_breast_cancer
from timing import demo_endpoint, machine, per_call_us, quick_run, write_report

NonNegative = Annotated[float, msgspec.Meta(ge=0)]


def build_msgspec(names: list[str]) -> Any:
    features = msgspec.defstruct(
        "Features", [(n, NonNegative) for n in names], forbid_unknown_fields=True
    )
    record = msgspec.defstruct("Record", [("features", features)], forbid_unknown_fields=True)
    batch = msgspec.defstruct("Batch", [("rows", list[record])], forbid_unknown_fields=True)  # type: ignore[valid-type]
    return record, batch


def build_pydantic(names: list[str]) -> Any:
    strict = pydantic.ConfigDict(extra="forbid")
    fields: dict[str, Any] = {n: (float, pydantic.Field(ge=0)) for n in names}
    features = pydantic.create_model("Features", __config__=strict, **fields)
    record = pydantic.create_model("Record", __config__=strict, features=(features, ...))
    batch = pydantic.create_model("Batch", __config__=strict, rows=(list[record], ...))  # type: ignore[valid-type]
    return record, batch


def main() -> None:
    quick = quick_run(__doc__)
    calls, repeats = (200, 3) if quick else (20_000, 7)

    endpoint = demo_endpoint()
    names = endpoint.model.feature_names or []
    data = load_breast_cancer().data
    records = [{"features": dict(zip(names, map(float, row), strict=True))} for row in data]
    one = orjson.dumps(records[0])
    batch_rows = 1000
    many = orjson.dumps({"rows": (records * 2)[:batch_rows]})

    ms_record, ms_batch = build_msgspec(names)
    pd_record, pd_batch = build_pydantic(names)
    ms_decoder = msgspec.json.Decoder(ms_record)
    ms_batch_decoder = msgspec.json.Decoder(ms_batch)

    single = {
        "ferroscore Endpoint.validate": lambda: endpoint.validate(one),
        "orjson.loads + msgspec.convert": lambda: msgspec.convert(orjson.loads(one), ms_record),
        "msgspec.json.decode (typed)": lambda: ms_decoder.decode(one),
        "pydantic model_validate_json": lambda: pd_record.model_validate_json(one),
    }
    batch = {
        "ferroscore Endpoint.validate": lambda: endpoint.validate(many),
        "orjson.loads + msgspec.convert": lambda: msgspec.convert(orjson.loads(many), ms_batch),
        "msgspec.json.decode (typed)": lambda: ms_batch_decoder.decode(many),
        "pydantic model_validate_json": lambda: pd_batch.model_validate_json(many),
    }
    batch_calls = 3 if quick else 40
    single_us = {k: per_call_us(f, calls, repeats) for k, f in single.items()}
    batch_us = {k: per_call_us(f, batch_calls, repeats) for k, f in batch.items()}
    ours_one = single_us["ferroscore Endpoint.validate"]
    ours_many = batch_us["ferroscore Endpoint.validate"]

    lines = [
        "# Parse + validate: ferroscore vs orjson+msgspec vs Pydantic v2",
        "",
        f"Machine: {machine()}; msgspec {msgspec.__version__}, orjson {orjson.__version__}, "
        f"pydantic {pydantic.__version__}. One thread, medians of {repeats} runs.",
        "",
        f"| stack | one record, {len(one)} B (µs) | vs ferroscore | "
        f"batch of {batch_rows} rows, {len(many) / 1e6:.2f} MB (MB/s) | vs ferroscore |",
        "|---|---:|---:|---:|---:|",
    ]
    for k in single:
        mbs = len(many) / batch_us[k]
        lines.append(
            f"| {k} | {single_us[k]:.2f} | {single_us[k] / ours_one:.2f}x | "
            f"{mbs:,.0f} | {batch_us[k] / ours_many:.2f}x |"
        )
    lines += [
        "",
        "'vs ferroscore' is how many times longer the stack takes (> 1: ferroscore is faster).",
        "ferroscore also fills the model's input rows and applies its missing-value policy; the",
        "others build Python objects. Every stack refuses unknown keys and negative values.",
    ]
    print(write_report("parse.md", lines))


if __name__ == "__main__":
    main()
