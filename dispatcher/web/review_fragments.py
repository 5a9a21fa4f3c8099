"""The review queue's answers to its own script: one delivery's item instead of a page.

static/js/review-queue.js posts a decision form with `X-Fragment: 1` and swaps the item for
the answer (200: decided, with what was done; 400: the form again with its errors and what
was typed; 409: refused by the delivery's state, the message only, so the page keeps the
typed text). Without the script the same routes redirect as before.
"""

from __future__ import annotations

from flask import render_template, request
from flask_wtf import FlaskForm

from dispatcher.extensions import db
from dispatcher.models import Delivery
from dispatcher.web.common import refusal_text
from dispatcher.web.review_forms import review_forms

HEADER = "X-Fragment"


def wants_fragment() -> bool:
    return request.headers.get(HEADER) == "1"


def _item(delivery: Delivery, status: int, *, message: str = "", category: str = "success",
          given: dict[int, dict[str, FlaskForm]] | None = None):  # fmt: skip
    given = given or {}
    html = render_template(
        "review/_item.html",
        d=delivery,
        forms=review_forms(delivery, given.get(delivery.id)),
        open_forms={(k, name) for k, v in given.items() for name in v},
        message=message,
        category=category,
    )
    return html, status, {"Cache-Control": "no-store", "Vary": HEADER}


def decided(delivery: Delivery, message: str):
    """The item once decided: its new state, the review just made, and what was done."""
    db.session.expire_all()
    return _item(db.session.get(Delivery, delivery.id), 200, message=message)


def retry(delivery: Delivery, given: dict[int, dict[str, FlaskForm]]):
    """The item with the failed form open, its errors and the typed text (400)."""
    return _item(delivery, 400, given=given)


def refused(delivery: Delivery, exc: Exception):
    """A decision the delivery's state refuses (decided elsewhere, job cancelled): 409 with
    the reason; the script shows it in the item and keeps what was typed."""
    db.session.rollback()
    return _item(delivery, 409, message=refusal_text(exc), category="error")
