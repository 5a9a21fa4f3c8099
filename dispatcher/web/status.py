"""The status page: is the machinery healthy, and what of mine is stuck?

System-wide (no owner's data): each channel's circuit breaker and the queues' depths.
The owner's own (through dispatcher/scoping.py): dispatches still trying (attempts, the
platform's last answer, when the next try is due), dispatches that failed with the
platform's reason (with "send again"), and webhooks about the owner's orders that were
quarantined because applying them kept failing (with "try again").
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import login_required
from redis.exceptions import RedisError
from sqlalchemy import select

from dispatcher import connections
from dispatcher.dispatch import service
from dispatcher.dispatch.breaker import BreakerState, breaker_for, breaker_key
from dispatcher.errors import NotFound
from dispatcher.extensions import db
from dispatcher.inbound.apply import dispatches_of, retry_quarantined
from dispatcher.models import Dispatch, DispatchState, InboundEvent
from dispatcher.ops.stats import QueueDepth, queue_depths
from dispatcher.scoping import get_owned, owned
from dispatcher.web.common import REFUSALS, actor, owner_id, refuse

bp = Blueprint("status", __name__)

#: how many rows of each list the page shows
LIMIT = 100


@dataclass(frozen=True)
class Quarantined:
    event: InboundEvent
    dispatches: list[Dispatch]


@bp.get("/status")
@login_required
def index():
    redis_error = None
    try:
        breakers = [
            (c, breaker_for(breaker_key(c.adapter, c.id)).snapshot())
            for c in connections.for_owner(owner_id())
        ]
        queues = queue_depths()
    except RedisError as exc:
        breakers, queues, redis_error = [], [], str(exc)
    pending = _owned_dispatches(DispatchState.PENDING, Dispatch.next_attempt_at)
    failed = _owned_dispatches(DispatchState.FAILED, Dispatch.id.desc())
    quarantined, others = quarantined_for(owner_id())
    return render_template(
        "status/index.html",
        breakers=breakers,
        queues=queues,
        redis_error=redis_error,
        pending=pending,
        failed=failed,
        quarantined=quarantined,
        others_quarantined=others,
        limit=LIMIT,
    )


@bp.post("/status/dispatches/<int:dispatch_id>/retry")
@login_required
def retry_dispatch(dispatch_id: int):
    dispatch = get_owned(Dispatch, dispatch_id, owner_id())
    try:
        service.retry_job(dispatch.job, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
    else:
        flash(f"“{dispatch.job.title}” is being sent again.", "success")
    return redirect(url_for("status.index"), code=303)


@bp.post("/status/inbound/<int:inbound_id>/retry")
@login_required
def retry_inbound(inbound_id: int):
    inbound = db.session.get(InboundEvent, inbound_id)
    if inbound is None or not _owns(inbound, owner_id()):
        raise NotFound(f"inbound event {inbound_id} not found")
    try:
        retry_quarantined(inbound)
    except ValueError as exc:
        refuse(exc)
    else:
        flash(f"Webhook {inbound.event_id} is being applied again.", "success")
    return redirect(url_for("status.index"), code=303)


def _owned_dispatches(state: str, order) -> list[Dispatch]:
    return list(
        db.session.scalars(
            owned(Dispatch, owner_id()).where(Dispatch.state == state).order_by(order).limit(LIMIT)
        )
    )


def quarantined_for(owner: int) -> tuple[list[Quarantined], int]:
    """The owner's quarantined webhooks, and how many others there are (not shown: they are
    about orders of other owners, or of no order we know)."""
    events = db.session.scalars(
        select(InboundEvent)
        .where(InboundEvent.status == "quarantined")
        .order_by(InboundEvent.id.desc())
        .limit(5 * LIMIT)
    ).all()
    mine, others = [], 0
    for event in events:
        dispatches = [d for d in dispatches_of(event) if d.job.owner_id == owner]
        if dispatches:
            mine.append(Quarantined(event, dispatches))
        else:
            others += 1
    return mine[:LIMIT], others


def _owns(inbound: InboundEvent, owner: int) -> bool:
    return any(d.job.owner_id == owner for d in dispatches_of(inbound))


__all__ = ["BreakerState", "QueueDepth", "bp", "queue_depths", "quarantined_for"]
