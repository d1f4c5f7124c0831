"""`multipart/form-data` bodies decoded strictly (python-multipart): a body that ends before
its closing boundary, or a part without a name, is refused rather than half-read.

`multipart/x-ferroscore-form` is the same document under the name a front proxy gives it so
that Robyn 0.88 hands the body over raw instead of decoding it itself (see the adapter)."""

from __future__ import annotations

import json

from python_multipart.multipart import MultipartParser, parse_options_header

MEDIA_TYPES = (b"multipart/form-data", b"multipart/x-ferroscore-form")


class FormError(ValueError):
    """The body is not a complete `multipart/form-data` document."""


def parse_form(content_type: str, body: bytes) -> dict[str, bytes]:
    """Field name → bytes (files and text fields alike); the last of a repeated name wins."""
    media, options = parse_options_header(content_type)
    if media.lower() not in MEDIA_TYPES:
        raise FormError(f"expected multipart/form-data, got {media.decode(errors='replace')!r}")
    boundary = options.get(b"boundary")
    if not boundary:
        raise FormError("the multipart/form-data content type has no boundary")
    fields: dict[str, bytes] = {}
    header: list[bytes] = [b"", b""]
    headers: dict[bytes, bytes] = {}
    data: list[bytes] = []
    ended = False

    def on_header_field(b: bytes, start: int, end: int) -> None:
        header[0] += b[start:end]

    def on_header_value(b: bytes, start: int, end: int) -> None:
        header[1] += b[start:end]

    def on_header_end() -> None:
        headers[header[0].lower()] = header[1]
        header[0], header[1] = b"", b""

    def on_part_data(b: bytes, start: int, end: int) -> None:
        data.append(b[start:end])

    def on_part_end() -> None:
        _, params = parse_options_header(headers.get(b"content-disposition", b""))
        name = params.get(b"name")
        if not name:
            raise FormError("a part of the form has no name in its Content-Disposition")
        fields[name.decode(errors="replace")] = b"".join(data)
        headers.clear()
        data.clear()

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except FormError:
        raise
    except Exception as e:
        raise FormError(f"malformed multipart/form-data: {e}") from None
    if not ended:
        raise FormError("the multipart/form-data body ends before its closing boundary")
    return fields


def name_files(fields: dict[str, bytes], files: tuple[bytes, ...]) -> dict[str, bytes]:
    """Names the files of a push form whose field names the server lost (Robyn 0.88), by
    what each document is: an input schema (a JSON object with "properties"), thresholds (a
    JSON list), a profile (a JSON object with "features" and "score"), else the model. Text
    fields keep their names; a name claimed twice is refused rather than guessed."""
    named = dict(fields)
    for data in files:
        name = _kind_of(data)
        if name in named:
            raise FormError(
                f"two parts of the form are a {name!r}; send the artifact as the only file and"
                " every other field as text (curl -F 'schema=<schema.json')"
            )
        named[name] = data
    return named


def _kind_of(data: bytes) -> str:
    try:
        document = json.loads(data)
    except ValueError:
        return "model"
    if isinstance(document, list):
        return "thresholds"
    if isinstance(document, dict):
        if "properties" in document and "learner" not in document:
            return "schema"
        if {"features", "score"} <= document.keys():
            return "profile"
    return "model"
