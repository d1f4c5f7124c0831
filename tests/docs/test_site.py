"""The docs site as a reader gets it: `mkdocs build --strict` (what `make docs` runs) builds
it, it loads nothing from another host, and in headless Chromium (the Debian package, driven
by Playwright) with every other host blocked each page renders, the generated pages hold
what they are generated from (every setting, every command, the hooks API), and the search
finds a setting by its name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from ferroscore.config import SETTINGS

from support import CHROMIUM, offline_page

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def address(site: Path) -> Iterator[str]:
    """The site over HTTP on loopback (port 0: the kernel picks a free one), as `make
    docs-serve` would serve it."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # A browser that moves on mid-download closes its connection: not a failure.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    httpd = Server(("127.0.0.1", 0), partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if p.name != "404.html")


def test_it_loads_nothing_from_elsewhere(site: Path) -> None:
    assert len(pages(site)) >= 15
    for page in pages(site):
        html = (site / page).read_text()
        # What a page loads (scripts, styles, fonts, images), not the links a reader follows.
        loaded = re.findall(r'<(?:script|img|iframe)[^>]*\bsrc="([^"]+)"', html) + [
            href for tag in re.findall(r"<link\b[^>]*>", html)
            if 'rel="stylesheet"' in tag or "preload" in tag or "icon" in tag
            for href in re.findall(r'href="([^"]+)"', tag)
        ]  # fmt: skip
        remote = [url for url in loaded if urlparse(url).scheme or url.startswith("//")]
        assert remote == [], f"{page} loads {remote}"


def test_the_generated_pages_hold_what_they_are_generated_from(site: Path) -> None:
    configuration = (site / "configuration.html").read_text()
    missing = [s.env for s in SETTINGS if s.env not in configuration]
    assert missing == []
    cli = (site / "cli.html").read_text()
    for command in ("serve", "migrate", "models", "push", "keys", "score", "decisions", "schema"):
        assert f">{command}<" in cli or f"ferroscore {command}" in cli, command
    extending = (site / "extending.html").read_text()
    for name in ("Context", "Outcome", "Reject", "Scored", "enrich", "decide", "route"):
        assert f'id="ferroscore.hooks.{name}"' in extending, name


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium")
def test_the_pages_render_and_search_finds_a_setting_with_no_network(
    site: Path, address: str
) -> None:
    from playwright.sync_api import expect

    with offline_page(address) as (page, elsewhere):
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        for name in pages(site):
            response = page.goto(f"{address}/{name}")
            assert response is not None, name
            assert response.status == 200, name
            title = page.locator("article h1").first
            expect(title).to_be_visible()
            assert title.inner_text().strip(), f"{name}: an empty title"
            # Material's own styles applied: the header bar is laid out, not raw HTML.
            assert page.locator("header.md-header").bounding_box() is not None, name

        page.goto(f"{address}/index.html")
        query = page.locator("input.md-search__input")
        query.click()
        # The index is built in a web worker: on a loaded machine that takes a while, and
        # what is typed before it is ready finds nothing.
        meta = page.locator(".md-search-result__meta")
        expect(meta).not_to_contain_text("Initializing", timeout=120_000)
        query.press_sequentially("FERROSCORE_DRIFT_MIN_ROWS")  # keys, as a reader types
        hit = page.locator(".md-search-result__item a[href*='configuration.html']").first
        expect(hit).to_be_visible(timeout=30_000)
        hit.click()
        page.wait_for_url(re.compile(r"configuration\.html"))
        expect(page.locator("article")).to_contain_text("FERROSCORE_DRIFT_MIN_ROWS")
    assert elsewhere == []
    assert failed == []
