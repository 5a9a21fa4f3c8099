"""Polling for channels that send no webhooks (DESIGN rule 4: polled changes take the same
path as webhooks).

`poll_due` (periodic, on the maintenance queue) finds the open orders whose next look is due
at every pollable channel and queues one `poll_batch` per channel (later: per connection), under
a job id per channel, so one channel is never polled by two workers at once. `poll_batch`
reads each order's changes page by page with the platform's cursor and stores each change as
an InboundEvent (unique per (adapter, event id): a change seen twice is stored once), then
queues the usual apply step (inbound/apply.py), quarantine included.

Per order (PollState): a scan that stops at `MAX_PAGES` keeps its cursor and goes on at the
next look; a finished scan starts from the top next time. A scan that found nothing new
doubles the wait (POLL_INTERVAL up to POLL_MAX_INTERVAL); anything new resets it. Orders that
are closed, or whose job holds nothing open at the platform, are not polled at all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from flask import current_app, has_app_context
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from adapters.base import Adapter, Capability, EventKind, NormalizedEvent
from dispatcher.errors import AdapterError, CircuitOpen, RetryableAdapterError
from dispatcher.extensions import db
from dispatcher.inbound.stored import POLL, to_json
from dispatcher.lifecycle import DispatchState, Status
from dispatcher.models import Dispatch, InboundEvent, MicroJob, PollState
from dispatcher.models._base import utcnow
from dispatcher.queues import MAINTENANCE, enqueue_once

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = POLL_INTERVAL = 30.0
POLL_MAX_INTERVAL = 1800.0
#: pages read per order per look; a longer scan goes on at the next look
MAX_PAGES = 10
#: orders looked at per batch job; the rest wait for the next round
BATCH_SIZE = 200
#: jobs with something still open at the platform
OPEN_JOBS = (
    Status.DISPATCHED,
    Status.TAKEN,
    Status.DELIVERED,
    Status.IN_REVIEW,
    Status.REVISION_REQUESTED,
    Status.ACCEPTED,
)


def adapter_for_dispatch(dispatch: Dispatch) -> Adapter:
    """The adapter of the dispatch's connection (its owner's credentials), with the shared
    breaker, that reads this dispatch's order."""
    from dispatcher.dispatch.breaker import guard
    from dispatcher.dispatch.channels import adapter_for

    return guard(adapter_for(dispatch))


def is_polled(adapter: Adapter) -> bool:
    """Polled: it can be polled and sends no webhooks, or its connection asks for polling."""
    if not adapter.supports(Capability.POLL):
        return False
    return not adapter.supports(Capability.WEBHOOKS) or bool(adapter.options.get("polling"))


def poll_due() -> dict[str, int]:
    """Queue one poll batch per channel with orders due for a look; the periodic job."""
    now = utcnow()
    rows = db.session.execute(
        select(Dispatch.id, Dispatch.adapter, Dispatch.connection_id)
        .join(MicroJob, Dispatch.job_id == MicroJob.id)
        .outerjoin(PollState, PollState.dispatch_id == Dispatch.id)
        .where(
            Dispatch.state == DispatchState.PLACED,
            Dispatch.external_id.is_not(None),
            MicroJob.status.in_(OPEN_JOBS),
            or_(PollState.next_poll_at.is_(None), PollState.next_poll_at <= now),
        )
        .order_by(PollState.next_poll_at.is_not(None), PollState.next_poll_at, Dispatch.id)
    ).all()
    groups: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for dispatch_id, adapter_name, connection_id in rows:
        groups[(adapter_name, connection_id)].append(dispatch_id)
    db.session.rollback()  # read-only: end the transaction the SELECT opened
    queued: dict[str, int] = {}
    for (adapter_name, connection_id), ids in groups.items():
        probe = db.session.get(Dispatch, ids[0])
        if not is_polled(adapter_for_dispatch(probe)):
            continue
        ids = ids[:BATCH_SIZE]
        name = f"{adapter_name}-{connection_id}" if connection_id else adapter_name
        enqueue_once(MAINTENANCE, poll_batch, adapter_name, ids, job_id=f"poll-{name}")
        queued[name] = len(ids)
    db.session.rollback()
    return queued


def poll_batch(adapter_name: str, dispatch_ids: list[int]) -> dict[str, int]:
    """Look at each order once; an open circuit ends the batch (the platform is down)."""
    counts = {"polled": 0, "stored": 0}
    for dispatch_id in dispatch_ids:
        dispatch = db.session.get(Dispatch, dispatch_id)
        if dispatch is None or dispatch.state != DispatchState.PLACED:
            continue
        try:
            stored = poll_dispatch(dispatch)
        except CircuitOpen as exc:
            log.warning("polling %s stopped: %s", adapter_name, exc)
            break
        counts["polled"] += 1
        counts["stored"] += stored
    return counts


def poll_dispatch(dispatch: Dispatch, adapter: Adapter | None = None) -> int:
    """Read one order's changes, store the new ones, queue their apply; returns how many new.

    Raises CircuitOpen (no call went out); every other platform failure is recorded on the
    order's PollState and waited out."""
    adapter = adapter or adapter_for_dispatch(dispatch)
    state = db.session.get(PollState, dispatch.id) or PollState(dispatch_id=dispatch.id)
    db.session.add(state)
    cursor, external_id = state.cursor, dispatch.external_id
    db.session.commit()  # no transaction stays open while the platform answers
    new_ids: list[int] = []
    try:
        for _ in range(MAX_PAGES):
            page = adapter.poll(external_id, cursor)
            new_ids += store_events(adapter.name, page.events, dispatch.connection_id)
            cursor = page.next_cursor
            if cursor is None:
                break
    except CircuitOpen:
        raise
    except AdapterError as exc:  # RetryableAdapterError included: wait, then look again
        _record(state, cursor, found=False, error=str(exc))
        if not isinstance(exc, RetryableAdapterError):
            log.warning("polling %s order %s refused: %s", adapter.name, external_id, exc)
        return 0
    _record(state, cursor, found=bool(new_ids), error=None)
    from dispatcher.inbound.queueing import enqueue_apply_quietly

    for inbound_id in new_ids:
        enqueue_apply_quietly(inbound_id)
    return len(new_ids)


def _record(state: PollState, cursor: str | None, *, found: bool, error: str | None) -> None:
    state = db.session.merge(state)
    now = utcnow()
    state.cursor = cursor
    state.polls += 1
    state.last_polled_at = now
    state.last_error = error[:2000] if error else None
    state.idle_polls = 0 if found else state.idle_polls + 1
    state.next_poll_at = now + timedelta(seconds=next_interval(state.idle_polls))
    db.session.commit()


def next_interval(idle_polls: int) -> float:
    """Seconds to the next look after `idle_polls` looks in a row that found nothing (the
    POLL_INTERVAL and POLL_MAX_INTERVAL settings; the module's defaults without an app)."""
    first, most = POLL_INTERVAL, POLL_MAX_INTERVAL
    settings = current_app.config.get("SETTINGS") if has_app_context() else None
    if settings is not None and first == DEFAULT_POLL_INTERVAL:
        first, most = settings.poll_interval, settings.poll_max_interval
    return min(most, first * 2 ** max(0, idle_polls))


def store_events(
    adapter_name: str, events: tuple[NormalizedEvent, ...], connection_id: int | None = None
) -> list[int]:
    """Store the changes not stored before (unique per connection and event id, as webhooks
    are); returns the ids of rows to apply. A race with another writer of the same event id
    (unique constraint) is retried once, re-reading."""
    for attempt in (1, 2):
        try:
            return _store(adapter_name, events, connection_id)
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
    return []


def _store(
    adapter_name: str, events: tuple[NormalizedEvent, ...], connection_id: int | None
) -> list[int]:
    if not events:
        return []
    ids = {e.event_id for e in events}
    same_source = (
        InboundEvent.connection_id == connection_id
        if connection_id is not None
        else InboundEvent.adapter == adapter_name
    )
    seen = set(
        db.session.scalars(
            select(InboundEvent.event_id).where(same_source, InboundEvent.event_id.in_(ids))
        )
    )
    rows = []
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        status, error = "received", None
        if event.kind == EventKind.IGNORED:
            status = "ignored"
        elif event.kind == EventKind.UNKNOWN:
            status, error = "invalid", f"unknown status: {event.platform_status or '?'}"
        rows.append(
            InboundEvent(
                adapter=adapter_name,
                connection_id=connection_id,
                event_id=event.event_id,
                source=POLL,
                headers={},
                body=to_json(event),
                status=status,
                error=error,
            )
        )
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows if row.status == "received"]


#: Every periodic job of this module: (function, interval in seconds). See dispatcher/periodic.py.
PERIODIC_JOBS = [(poll_due, 2)]  # cheap when nothing is due: one query
