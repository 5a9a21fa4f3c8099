"""/api/docs: a self-contained page that reads /api/openapi.json and shows it.

No CDN and no vendored UI: one HTML file with a script and a stylesheet from our own static
files (no inline code, so a strict CSP holds), so the docs work offline. Descriptions are
Markdown, as docstrings are written; the script renders them.
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
    urls = {
        "__SPEC_URL__": url_for("api-docs.openapi_json"),
        "__CSS_URL__": url_for("static", filename="api-docs.css"),
        "__JS_URL__": url_for("static", filename="js/api-docs.js"),
        "__ICON_URL__": url_for("web_common.favicon"),
    }
    page = _page_source()
    for slot, url in urls.items():
        page = page.replace(slot, str(escape(url)))
    # It loads nothing from elsewhere and runs no inline code: the app-wide CSP
    # (dispatcher/security/headers.py) holds for it as for every page.
    return Response(page, mimetype="text/html")
