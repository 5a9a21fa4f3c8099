"""Fixtures for Today and the digest: owners, goals, jobs, and a logged-in client."""

from __future__ import annotations

from datetime import date

import pytest
from fakes.connections import connect_sandbox
from fakes.smtp import inbox, smtp_port  # noqa: F401  (fixtures: a real SMTP server)

from dispatcher.extensions import db, login_manager
from dispatcher.models import Owner
from dispatcher.planning import tree


@pytest.fixture
def user_loader(app):
    """Use the app's user loader; until the login module registers one, a plain one that
    loads the Owner by id (restored afterwards)."""
    saved = login_manager._user_callback
    if saved is None:
        login_manager.user_loader(lambda user_id: db.session.get(Owner, int(user_id)))
    yield
    login_manager._user_callback = saved


def make_owner(email: str, *, timezone: str = "UTC", digest_hour: int | None = None) -> Owner:
    owner = Owner(email=email, name=email.split("@")[0].title(), timezone=timezone)
    owner.digest_hour = digest_hour
    owner.set_password("correct horse battery")
    db.session.add(owner)
    db.session.commit()
    connect_sandbox(owner.id)  # delegating to "sandbox" means the owner's connection
    return owner


@pytest.fixture
def owner(app) -> Owner:
    return make_owner("ann@example.com")


@pytest.fixture
def goal(owner):
    return tree.create_goal(
        owner.id, title="52 guest posts", metric_name="posts published", target=52,
        budget_cents=10_000,
    )  # fmt: skip


@pytest.fixture
def login(client, user_loader):
    """Log `owner` into the test client by its session (the way Flask-Login keeps it)."""

    def _login(owner: Owner):
        with client.session_transaction() as session:
            session["_user_id"] = str(owner.id)
            session["_fresh"] = True
        return client

    return _login


@pytest.fixture
def today() -> date:
    return date(2025, 3, 12)


@pytest.fixture
def flow(app):
    """Move a delegated job along the way a worker and a webhook would."""
    from dispatcher.dispatch import service

    class Flow:
        def dispatch(self, job):
            """Dispatch through the service, then mark it placed as the send task does."""
            from dispatcher import lifecycle
            from dispatcher.models import DispatchState

            dispatch = service.dispatch_job(job)
            dispatch.external_id = f"ord-{dispatch.id}"
            dispatch.state = DispatchState.PLACED
            lifecycle.transition(job, "dispatched", actor="test")
            db.session.commit()
            return dispatch

        def deliver(self, dispatch, n: int = 1):
            """A delivery arrives through the real apply step."""
            from adapters.base import EventKind, NormalizedEvent
            from dispatcher.inbound.apply import apply_event
            from dispatcher.models._base import utcnow

            event = NormalizedEvent(
                kind=EventKind.DELIVERED, event_id=f"ev-{dispatch.id}-{n}",
                external_id=dispatch.external_id, occurred_at=utcnow(), raw={},
                delivery_id=f"sub-{dispatch.id}-{n}", content="here it is", worker="w42",
            )  # fmt: skip
            apply_event(dispatch.adapter, event)
            db.session.commit()
            return dispatch.job.deliveries[-1]

    return Flow()
