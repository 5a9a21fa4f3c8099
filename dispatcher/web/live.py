"""What the pages need for live updates: the stream's URL with a token for the logged-in
owner (in every page's <body data-live-url>), the review count for the badge, and a goal's
rows (parents' summaries, what delegated jobs wait for), fetched by static/js/live.js when a
change may have moved them. Without LIVE_URL pages work as before."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_required

from dispatcher.extensions import db
from dispatcher.live.server import make_token
from dispatcher.models import Goal, MicroJob
from dispatcher.planning import folding
from dispatcher.scoping import get_owned, owned
from dispatcher.today import waiting_for
from dispatcher.web.common import owner_id, status_class

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


@bp.get("/live/goals/<int:goal_id>/rows")
@login_required
def goal_rows(goal_id: int):
    """For the jobs of `?ids=` a page shows: each parent's summary (text and chip class)
    and what each delegated leaf waits for ("" once it waits no more). Three queries."""
    goal = get_owned(Goal, goal_id, owner_id())
    ids = folding.parse_open(request.args.get("ids"))
    rows: dict[str, dict[str, str]] = {}
    for job_id, (summary, status) in folding.parent_summaries(goal, ids).items():
        rows[str(job_id)] = {"summary": summary.text, "class": status_class(status)}
    leaves = [i for i in ids if str(i) not in rows]
    jobs = db.session.scalars(
        owned(MicroJob, owner_id()).where(MicroJob.goal_id == goal.id, MicroJob.id.in_(leaves))
    ).all() if leaves else []  # fmt: skip
    waiting = waiting_for(jobs, current_user)
    for job in jobs:
        rows[str(job.id)] = {"waiting": waiting.get(job.id, "")}
    response = jsonify(rows=rows)
    response.headers["Cache-Control"] = "no-store"
    return response
