"""What the page blueprints share: who acts, where to go back to, how refusals are shown, and
the template helpers (money, times, status labels, the review count in the nav)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib.resources import files
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, current_app, flash, redirect, request
from flask_login import current_user
from werkzeug.wrappers import Response

from dispatcher.errors import BudgetExceeded, InvalidTransition, Unsupported
from dispatcher.extensions import db
from dispatcher.lifecycle import AWAITING_REVIEW, COMPLETE, OUT, Status
from dispatcher.money import format_cents

#: What the services raise when the owner asks for something the state does not allow; pages
#: show these as a message, never as an error page.
REFUSALS = (BudgetExceeded, InvalidTransition, Unsupported, ValueError)

bp = Blueprint("web_common", __name__)


def actor() -> str:
    """How the logged-in owner appears in Event.actor."""
    return f"owner:{current_user.id}"


def owner_id() -> int:
    return int(current_user.id)


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site (never another host, no control characters)."""
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None  # a CR/LF would split the Location header
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


def back(default: str) -> Response:
    """Redirect (303, so the browser GETs) to the form's `next` field, else to `default`."""
    return redirect(safe_next(request.form.get("next")) or default, code=303)


def refuse(exc: Exception) -> None:
    """Undo the failed change and tell the owner why, on the next page."""
    db.session.rollback()
    flash(refusal_text(exc), "error")


def refusal_text(exc: Exception) -> str:
    """A refusal as the owner reads it (a sentence, over budget explained)."""
    if isinstance(exc, BudgetExceeded):
        return f"Over budget: {exc}. Raise the goal's budget or lower the price."
    return str(exc)[:1].upper() + str(exc)[1:]


def channel_choices() -> list[tuple[str, str, str]]:
    """The owner's connections as a channel picker shows them: (id, label, adapter)."""
    from dispatcher import connections

    return [
        (str(c.id), f"{c.label} ({c.adapter})", c.adapter)
        for c in connections.for_owner(owner_id())
    ]


def counted(n: int, word: str) -> str:
    """ "1 job", "7 jobs": how confirmations count what an action made."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def channel_names() -> list[str]:
    return current_app.extensions["dispatcher.adapters"].names()


@bp.get("/favicon.ico", endpoint="favicon")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on every site whatever the page links; answer it."""
    response = Response(_favicon_bytes(), mimetype="image/vnd.microsoft.icon")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


@cache
def _favicon_bytes() -> bytes:
    return (files("dispatcher") / "static" / "favicon.ico").read_bytes()


# --- template helpers -------------------------------------------------------------------------


@bp.app_template_filter("money")
def money(cents: int | None, currency: str = "USD") -> str:
    return format_cents(cents, currency)


@bp.app_template_filter("when")
def when(moment: datetime | None) -> str:
    """A time in the owner's time zone, to the minute."""
    if moment is None:
        return "—"
    tz_name = getattr(current_user, "timezone", None) or "UTC"
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


@bp.app_template_filter("status_label")
def status_label(status: str | None) -> str:
    return (status or "").replace("_", " ")


@bp.app_template_filter("status_class")
def status_class(status: str | None) -> str:
    """A colour group for a status chip."""
    if status in COMPLETE:
        return "ok"
    if status in AWAITING_REVIEW:
        return "review"
    if status in OUT or status == Status.IN_PROGRESS:
        return "out"
    if status in (Status.FAILED, Status.EXPIRED, Status.REJECTED):
        return "bad"
    if status == Status.CANCELLED:
        return "off"
    return "todo"


@bp.app_template_filter("who")
def who(actor: str | None) -> str:
    """Event.actor as the owner reads it: "you", the channel's name, or as recorded."""
    actor = actor or "system"
    kind, _, rest = actor.partition(":")
    if kind == "owner" and current_user.is_authenticated and rest == str(current_user.id):
        return "you"
    if kind == "owner" and not rest:
        return "you" if current_user.is_authenticated else "owner"
    if kind in ("adapter", "channel") and rest:
        return rest
    return actor


@bp.app_template_filter("link")
def link(url: str | None) -> str | None:
    """A URL someone else sent us, if it is safe to put in href (http or https only)."""
    if not url:
        return None
    scheme = urlsplit(url.strip()).scheme.lower()
    return url.strip() if scheme in ("http", "https") else None


@bp.app_context_processor
def _nav() -> dict:
    def review_count() -> int:
        if not current_user.is_authenticated:
            return 0
        from dispatcher.dispatch.review import awaiting_review_count

        return awaiting_review_count(owner_id())

    return {"review_count": review_count}
