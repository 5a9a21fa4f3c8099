"""/api/docs: a self-contained page that reads /api/openapi.json and shows it.

No CDN and no vendored UI: one HTML file with a static script and stylesheet, so the docs
work offline.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from flask import Blueprint, Response, url_for
from markupsafe import escape

bp = Blueprint("api_docs_page", __name__)


@cache
def _page_source() -> str:
    return (files("dispatcher.api") / "docs_page.html").read_text(encoding="utf-8")


@bp.route("/api/docs")
def docs() -> Response:
    """The page's script and styles are static files, so the app-wide CSP (no inline code)
    holds here too (dispatcher/security/headers.py)."""
    urls = {
        "__SPEC_URL__": url_for("api-docs.openapi_json"),
        "__CSS_URL__": url_for("static", filename="api-docs.css"),
        "__JS_URL__": url_for("static", filename="js/api-docs.js"),
    }
    source = _page_source()
    for marker, url in urls.items():
        source = source.replace(marker, str(escape(url)))
    return Response(source, mimetype="text/html")
