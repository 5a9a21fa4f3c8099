"""/api/docs: a self-contained page that reads /api/openapi.json and shows it.

No CDN and no vendored UI: one HTML file with a little script, so the docs work offline.
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
    spec_url = str(escape(url_for("api-docs.openapi_json")))
    response = Response(_page_source().replace("__SPEC_URL__", spec_url), mimetype="text/html")
    # The page loads nothing from elsewhere; say so to the browser too.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src 'self' data:"
    )
    return response
