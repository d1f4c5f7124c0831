"""`multipart/form-data` bodies decoded strictly (python-multipart): a body that ends before
its closing boundary, or a part without a name, is refused rather than half-read.

`multipart/x-ferroscore-form` is the same document under the name a front proxy gives it so
that Robyn 0.88 hands the body over raw instead of decoding it itself (see the adapter)."""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header

MEDIA_TYPES = (b"multipart/form-data", b"multipart/x-ferroscore-form")
#: The field an adapter adds when a server decoded a form into files it cannot name.
SEVERAL_FILES = "__files__"


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
