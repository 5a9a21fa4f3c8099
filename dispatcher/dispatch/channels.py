"""Which adapter a dispatch talks through (its owner's connection) and what it is told about the
job. The one place send, cancel, push and the poller get their adapter from."""

from __future__ import annotations

import logging

from flask import current_app

from adapters.base import (
    Adapter,
    AdapterRegistry,
    JobSpec,
)
from dispatcher import connections, versions
from dispatcher.dispatch.breaker import guard
from dispatcher.models import Dispatch, MicroJob
from dispatcher.people.directory import person_ref

log = logging.getLogger(__name__)


def registry() -> AdapterRegistry:
    return current_app.extensions["dispatcher.adapters"]


def adapter_for(dispatch: Dispatch) -> Adapter:
    """The adapter of the dispatch's connection (its owner's credentials); a row made
    before connections existed gets the bare adapter."""
    if dispatch.connection_id is None:
        return registry().get(dispatch.adapter)
    return connections.adapter_for_connection(dispatch.connection_id)


def _callback_url(settings, dispatch: Dispatch) -> str:
    if dispatch.connection is None:
        return ""
    return settings.public_base_url.rstrip("/") + connections.webhook_path(dispatch.connection)


def job_spec(job: MicroJob, dispatch: Dispatch, places_count: int | None = None) -> JobSpec:
    """A plain copy of what the platform needs; adapters never see ORM rows. A teammate
    channel also gets the person and a fresh submission link to the order's assignment
    (minted in the caller's transaction, which commits before the call goes out)."""
    # the person the job names (a platform may use it to invite a regular freelancer)
    place = dispatch.assignments[0] if dispatch.assignments else None
    submission_url = ""
    cls = registry().classes().get(dispatch.adapter)
    if cls is not None and cls.teammate and place is not None and not cls.brief_by_notice:
        from dispatcher.teammates import links

        # else the brief notice carries a link minted as it is sent
        submission_url = links.mint(place)
    count = places_count if places_count is not None else len(dispatch.assignments)
    person_id = (place.person_id if place else None) or job.person_id
    return spec_for(job, dispatch, count, person_id, submission_url)


def spec_for(
    job: MicroJob, dispatch: Dispatch, count: int, person_id: int | None, submission_url: str = ""
) -> JobSpec:
    """`job_spec` once its places are known: also what a request carries in a first
    attempt's token (carried.py), so the two cannot differ."""
    settings = current_app.config["SETTINGS"]
    text = versions.text_at(job, dispatch.job_version)  # what this order was made with
    return JobSpec(
        job_id=job.id,
        title=text.title,
        brief=text.brief,
        acceptance_criteria=text.acceptance_criteria,
        deliverable_kind=job.deliverable_kind,
        price_cents=job.price_cents,
        currency=dispatch.currency,
        assignments=count,
        due_date=job.due_date,
        callback_url=_callback_url(settings, dispatch),
        options=dict(job.channel_options or {}),
        person=person_ref(person_id),
        submission_url=submission_url,
    )


def guarded_adapter(dispatch: Dispatch) -> Adapter:
    """The dispatch's connection's adapter, with the circuit breaker every worker shares."""
    return guard(adapter_for(dispatch))
