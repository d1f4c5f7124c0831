"""MkDocs hooks (mkdocs.yml `hooks:`): pages that are generated from the code, so that they
cannot go stale. `<!-- settings -->` becomes the table of `config.SETTINGS` (as
`ferroscore config --markdown` prints it)."""

from __future__ import annotations

from typing import Any

from ferroscore.config import markdown_table

MARKERS = {"<!-- settings -->": markdown_table}


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, generate in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
