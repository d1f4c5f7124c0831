"""`/docs` in a real browser with no network but this server: headless Chromium (the Debian
package) driven by Playwright loads the page with every other host blocked, finds the API
rendered (not blank), and scores one record through "Try it out"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources

import pytest

from ferroscore.models.registry import DEMO_MODEL

from support import CHROMIUM, ServerProcess, offline_page, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with serving({"DATABASE_URL": module_database},
                 tmp_path_factory.mktemp("docs") / "server.log") as srv:  # fmt: skip
        yield srv


def test_the_assets_are_ours(server: ServerProcess) -> None:
    status, _ = server.request("GET", "/docs/../../etc/passwd")
    assert status == 404
    status, refused = server.request("GET", "/docs/index.j2")
    assert (status, refused["code"]) == (404, "not_found")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium")
def test_the_reference_renders_offline_and_scores_through_try_it_out(
    server: ServerProcess,
) -> None:
    example = resources.files("ferroscore.demo").joinpath("example.json").read_text()
    with offline_page(server.url) as (page, elsewhere):
        page.goto(f"{server.url}/docs", wait_until="networkidle")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
        assert "ferroscore" in page.inner_text(".swagger-ui .info .title")
        # The key, as a user pastes it into "Authorize".
        page.locator(".swagger-ui button.authorize").first.click()
        bearer = page.locator(".auth-container").filter(has_text="bearer")
        assert server.key is not None
        bearer.locator("input").first.fill(server.key)
        bearer.locator("button.authorize").click()
        page.locator(".swagger-ui button.btn-done").first.click()
        operation = page.locator("#operations-v1-post_v1_models_name_score")
        operation.locator(".opblock-summary").click()
        operation.locator(".try-out__btn").click()
        operation.locator("input[placeholder='name']").fill(DEMO_MODEL)
        operation.locator("textarea.body-param__text").fill(example)
        operation.locator("button.execute").click()
        live = operation.locator(".live-responses-table tbody .response-col_status").first
        live.wait_for(timeout=15_000)
        assert live.inner_text().strip().startswith("200")
        body = operation.locator(".live-responses-table tbody .response-col_description pre").first
        assert json.loads(body.inner_text())["model"] == DEMO_MODEL
    assert elsewhere == [], f"the page reached for other hosts: {elsewhere}"
