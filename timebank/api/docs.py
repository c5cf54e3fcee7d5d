"""The API explorer page: Swagger UI from our own static files, no inline script, no CDN."""

from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

SWAGGER_UI = "/static/vendor/swagger-ui-5.18.2"

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Timebank API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>
  <script src="/static/docs/swagger-init.js"></script>
</body>
</html>
""".encode()


class ApiExplorerPlugin(OpenAPIRenderPlugin):
    """Serves the page at /schema/; the page loads /schema/openapi.json itself."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        return _PAGE
