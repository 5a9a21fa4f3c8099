"""/api/v1/deliveries: work that came back, and the owner's review of it."""

from __future__ import annotations

from flask_smorest import Blueprint

from dispatcher.api import auth, problems
from dispatcher.dispatch import review
from dispatcher.models import Delivery
from dispatcher.schemas.deliveries import DeliverySchema
from dispatcher.schemas.reviews import AcceptSchema, RejectSchema, ReviewSchema, ReviseSchema
from dispatcher.scoping import get_owned

blp = Blueprint(
    "Deliveries",
    __name__,
    url_prefix="/api/v1",
    description="Deliveries awaiting review, and the review: accept (pay), revise, reject.",
)
auth.protect(blp)
problems.install(blp)

NOT_FOUND = "No such delivery (or not yours)"
DECIDED = "The delivery was already decided, or the job is not awaiting review"


def _delivery(delivery_id: int) -> Delivery:
    return get_owned(Delivery, delivery_id, auth.owner_id())


@blp.route("/deliveries")
@blp.response(200, DeliverySchema(many=True))
def awaiting():
    """Deliveries awaiting my review, oldest first"""
    return review.awaiting_review(auth.owner_id(), with_reviews=True)


@blp.route("/deliveries/<int:delivery_id>")
@blp.response(200, DeliverySchema)
@blp.alt_response(404, description=NOT_FOUND)
def get_delivery(delivery_id: int):
    """Get a delivery, with the reviews it had"""
    return _delivery(delivery_id)


@blp.route("/deliveries/<int:delivery_id>/accept", methods=["POST"])
@blp.arguments(AcceptSchema, required=False)
@blp.response(201, ReviewSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=DECIDED)
def accept(data: dict, delivery_id: int):
    """Accept the work and pay (the job's price unless payout_cents says less)"""
    return review.accept(
        _delivery(delivery_id),
        payout_cents=data["payout_cents"],
        rating=data["rating"],
        actor=auth.ACTOR,
    )


@blp.route("/deliveries/<int:delivery_id>/revise", methods=["POST"])
@blp.arguments(ReviseSchema)
@blp.response(201, ReviewSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=DECIDED)
def revise(data: dict, delivery_id: int):
    """Ask for a revision, saying what should change"""
    return review.request_revision(
        _delivery(delivery_id), feedback=data["feedback"], actor=auth.ACTOR
    )


@blp.route("/deliveries/<int:delivery_id>/reject", methods=["POST"])
@blp.arguments(RejectSchema)
@blp.response(201, ReviewSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=DECIDED)
def reject(data: dict, delivery_id: int):
    """Reject the work (the worker sees the reason); its money is released"""
    return review.reject(_delivery(delivery_id), reason=data["reason"], actor=auth.ACTOR)
