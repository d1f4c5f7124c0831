"""`GET /docs`: an interactive reference of `/openapi.json` (Swagger UI), served from the
assets of the `swagger-ui-bundle-v2` package, so it works with no network beyond this
server (Robyn's own `/docs` loads Swagger UI from a CDN, blank offline)."""

from __future__ import annotations

from pathlib import Path

from swagger_ui_bundle import swagger_ui_path

from ferroscore.pipeline import Call, Handler, Reply, error_reply

ASSETS = Path(swagger_ui_path)
#: The files the page loads, and their media types; nothing else is served.
_SERVED = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ferroscore API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
    });
  </script>
</body>
</html>
"""


def page(_: Call) -> Reply:
    return Reply(200, _PAGE, {"content-type": "text/html; charset=utf-8"})


def assets() -> Handler:
    """The page's files, read once, each cached by browsers for a day."""
    loaded = {name: (ASSETS / name).read_bytes() for name in _SERVED}

    def handle(call: Call) -> Reply:
        name = call.params["asset"]
        if name not in loaded:
            return error_reply(404, "not_found", f"no asset {name!r}")
        headers = {"content-type": _SERVED[name], "cache-control": "public, max-age=86400"}
        return Reply(200, loaded[name], headers)

    return handle
