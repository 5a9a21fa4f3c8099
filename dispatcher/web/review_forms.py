"""The decision forms a delivery shows while the owner can still decide on it: used by the
review queue and by the job page alike (so neither page module imports the other)."""

from __future__ import annotations

from flask_wtf import FlaskForm

from dispatcher.dispatch import review as decisions
from dispatcher.forms import AcceptForm, RejectForm, RevisionForm, amount_text
from dispatcher.lifecycle import DeliveryState
from dispatcher.lifecycle.assignment import UNPAID_END
from dispatcher.models import Delivery


def is_open(delivery: Delivery) -> bool:
    """Whether the owner can still decide on this delivery: waiting for review, or late work
    whose place ended unpaid (it can be accepted explicitly, paid from its own order)."""
    if delivery.status == DeliveryState.SUBMITTED:
        return True
    place = delivery.assignment
    return (
        delivery.status == DeliveryState.LATE and place is not None and place.status in UNPAID_END
    )


def review_forms(
    delivery: Delivery, given: dict[str, FlaskForm] | None = None
) -> dict[str, FlaskForm | None] | None:
    """The decision forms for an open delivery (None once decided). Late work can only be
    accepted; a channel without revisions gets no revision form (the page says so)."""
    if not is_open(delivery):
        return None
    given = given or {}
    place = delivery.assignment
    price = place.price_cents if place is not None else delivery.job.price_cents
    forms: dict[str, FlaskForm | None] = {
        "accept": given.get("accept")
        or AcceptForm(formdata=None, data={"payout": amount_text(price)}),
        "revise": None,
        "reject": None,
    }
    if delivery.status == DeliveryState.SUBMITTED:
        if decisions.can_revise(delivery):
            forms["revise"] = given.get("revise") or RevisionForm(formdata=None)
        forms["reject"] = given.get("reject") or RejectForm(formdata=None)
    return forms
