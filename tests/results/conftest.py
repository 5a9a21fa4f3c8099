"""Fixtures for results: an owner, a goal with a metric and budget, a logged-in client, and a
helper that moves delegated jobs the way the worker and the webhooks do."""

from __future__ import annotations

import pytest
from fakes.connections import connect_sandbox

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


def make_owner(email: str, timezone: str = "UTC") -> Owner:
    owner = Owner(email=email, name=email.split("@")[0].title(), timezone=timezone)
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
        owner.id, title="10k visits a month", metric_name="monthly visits", baseline=2000,
        target=10_000, budget_cents=10_000,
    )  # fmt: skip


@pytest.fixture
def login(client, user_loader):
    def _login(owner: Owner):
        with client.session_transaction() as session:
            session["_user_id"] = str(owner.id)
            session["_fresh"] = True
        return client

    return _login


@pytest.fixture
def flow(app):
    """Dispatch, place, deliver and review jobs through the real services."""
    from fakes.work import place

    from adapters.base import EventKind, NormalizedEvent
    from dispatcher.dispatch import review, service
    from dispatcher.inbound.apply import apply_event
    from dispatcher.models._base import utcnow

    class Flow:
        def delegated(self, goal, title="job", price=1000, channel="sandbox", **fields):
            return tree.add_job(
                goal, title=title, mode="delegate", channel=channel, price_cents=price, **fields
            )

        def dispatch(self, job):
            dispatch = place(service.dispatch_job(job))
            db.session.commit()
            return dispatch

        def deliver(self, dispatch, n: int = 1):
            event = NormalizedEvent(
                kind=EventKind.DELIVERED, event_id=f"ev-{dispatch.id}-{n}",
                external_id=dispatch.external_id, occurred_at=utcnow(), raw={},
                delivery_id=f"sub-{dispatch.id}-{n}", content="done", worker="w1",
            )  # fmt: skip
            apply_event(dispatch.adapter, event)
            db.session.commit()
            db.session.expire_all()
            return dispatch.job.deliveries[-1]

        def accept(self, delivery, payout=None):
            """Accept, and the platform confirms the payment (its webhook, applied)."""
            decided = review.accept(delivery, payout_cents=payout, rating=5)
            dispatch = delivery.dispatch
            paid = NormalizedEvent(
                kind=EventKind.PAID, event_id=f"paid-{delivery.id}",
                external_id=dispatch.external_id, occurred_at=utcnow(), raw={},
                delivery_id=delivery.external_id, payout_cents=decided.payout_cents,
            )  # fmt: skip
            apply_event(dispatch.adapter, paid)
            db.session.commit()
            return decided

        def reject(self, delivery):
            return review.reject(delivery, reason="off topic")

        def revise(self, delivery):
            return review.request_revision(delivery, feedback="shorter please")

    return Flow()
