"""What the pages need for live updates: the stream's URL with a token for the logged-in
owner (in every page's <body data-live-url>), and the review count for the badge, fetched by
static/js/live.js when a change may have moved it. Without LIVE_URL pages work as before."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, current_app, jsonify
from flask_login import current_user, login_required

from dispatcher.live.server import make_token
from dispatcher.web.common import owner_id

bp = Blueprint("live", __name__)


@bp.app_context_processor
def _live() -> dict:
    def live_stream_url() -> str:
        settings = current_app.config["SETTINGS"]
        if not settings.live_url or not current_user.is_authenticated:
            return ""
        token = make_token(settings.secret_key, owner_id())
        return f"{settings.live_url.rstrip('/')}/events?token={quote(token)}"

    return {"live_stream_url": live_stream_url}


@bp.get("/live/badge")
@login_required
def badge():
    from dispatcher.dispatch.review import awaiting_review_count

    response = jsonify(review=awaiting_review_count(owner_id()))
    response.headers["Cache-Control"] = "no-store"
    return response
