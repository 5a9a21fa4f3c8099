"""Turnaround and acceptance rate per channel, read from the Event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from adapters.sandbox import SandboxAdapter
from dispatcher import lifecycle, results
from dispatcher.dispatch import service
from dispatcher.extensions import db
from dispatcher.models import Event
from dispatcher.planning import tree

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _retime(job, kind: str, at: datetime, nth: int = 0) -> None:
    """Set when the nth `kind` event of `job` happened (the tests choose the clock)."""
    ids = [
        e.id
        for e in db.session.query(Event)
        .filter(Event.job_id == job.id, Event.kind == kind)
        .order_by(Event.id)
    ]
    db.session.execute(update(Event).where(Event.id == ids[nth]).values(created_at=at))
    db.session.commit()


class HelperChannel(SandboxAdapter):
    """A second channel for the tests: the sandbox under another name."""

    name = "helper"


@pytest.fixture
def two_channels(app, owner):
    from adapters.base import AdapterRegistry
    from dispatcher import connections

    settings = app.config["SETTINGS"]
    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        settings, {"sandbox": SandboxAdapter, "helper": HelperChannel}
    )
    connections.create(owner.id, "helper", "Helper", {"api_key": "sbx_unused"})
    db.session.commit()


def test_turnaround_and_acceptance_per_channel(goal, flow, two_channels):
    fast = flow.delegated(goal, "fast", price=100)
    slow = flow.delegated(goal, "slow", price=100)
    bad = flow.delegated(goal, "bad", price=100)
    other = flow.delegated(goal, "other", price=100, channel="helper")

    flow.accept(flow.deliver(flow.dispatch(fast)))
    _retime(fast, "dispatched", T0)
    _retime(fast, "delivered", T0 + timedelta(hours=2))
    _retime(fast, "accept", T0 + timedelta(hours=3))

    flow.accept(flow.deliver(flow.dispatch(slow)))
    _retime(slow, "dispatched", T0)
    _retime(slow, "delivered", T0 + timedelta(hours=10))
    _retime(slow, "accept", T0 + timedelta(hours=13))

    flow.reject(flow.deliver(flow.dispatch(bad)))
    _retime(bad, "dispatched", T0)
    _retime(bad, "delivered", T0 + timedelta(hours=1))
    _retime(bad, "reject", T0 + timedelta(hours=1, minutes=30))

    dispatch = flow.dispatch(other)
    flow.revise(flow.deliver(dispatch, 1))
    flow.accept(flow.deliver(dispatch, 2))
    _retime(other, "dispatched", T0)
    _retime(other, "delivered", T0 + timedelta(days=1), 0)
    _retime(other, "request_revision", T0 + timedelta(days=1, hours=1))
    _retime(other, "delivered", T0 + timedelta(days=2), 1)
    _retime(other, "accept", T0 + timedelta(days=3))

    stats = {s.channel: s for s in results.channel_stats(goal.owner_id)}

    sandbox = stats["sandbox"]
    assert (sandbox.dispatched, sandbox.delivered, sandbox.accepted, sandbox.rejected) == (
        3, 3, 2, 1,
    )  # fmt: skip
    assert sandbox.acceptance_rate == pytest.approx(2 / 3)
    assert sandbox.avg_to_delivery == timedelta(hours=(2 + 10 + 1) / 3)
    assert sandbox.avg_to_acceptance == timedelta(hours=(3 + 13) / 2)

    helper = stats["helper"]
    assert (helper.dispatched, helper.delivered, helper.revisions) == (1, 2, 1)
    assert helper.acceptance_rate == 1.0
    assert helper.avg_to_delivery == timedelta(days=1)  # to the first delivery
    assert helper.avg_to_acceptance == timedelta(days=3)


def test_a_redispatched_job_starts_a_new_cycle(goal, flow):
    job = flow.delegated(goal, "again", price=100)
    flow.reject(flow.deliver(flow.dispatch(job)))
    db.session.refresh(job)
    dispatch = service.retry_job(job)
    dispatch.external_id = f"ord-{dispatch.id}"
    lifecycle.transition(job, "dispatched", actor="test")
    db.session.commit()
    flow.accept(flow.deliver(dispatch, 1))
    _retime(job, "dispatched", T0, 0)
    _retime(job, "delivered", T0 + timedelta(hours=5), 0)
    _retime(job, "reject", T0 + timedelta(hours=6))
    _retime(job, "requeue", T0 + timedelta(hours=6, minutes=30))
    _retime(job, "dispatched", T0 + timedelta(hours=7), 1)
    _retime(job, "delivered", T0 + timedelta(hours=8), 1)
    _retime(job, "accept", T0 + timedelta(hours=9))

    [stats] = results.channel_stats(goal.owner_id)

    assert (stats.dispatched, stats.accepted, stats.rejected) == (2, 1, 1)
    assert stats.acceptance_rate == 0.5
    assert stats.to_delivery == [timedelta(hours=5), timedelta(hours=1)]
    assert stats.to_acceptance == [timedelta(hours=2)]  # from the second dispatch


def test_no_decisions_yet_means_no_rate(goal, flow):
    flow.dispatch(flow.delegated(goal, "out"))
    [stats] = results.channel_stats(goal.owner_id)
    assert stats.dispatched == 1
    assert stats.acceptance_rate is None
    assert stats.avg_to_delivery is None


def test_stats_are_scoped_to_owner_and_goal(goal, flow, owner):
    from .conftest import make_owner

    other_goal = tree.create_goal(owner.id, title="other", budget_cents=1000)
    flow.dispatch(flow.delegated(other_goal, "elsewhere", price=100))
    bob = make_owner("bob@example.com")
    bobs = tree.create_goal(bob.id, title="bob", budget_cents=1000)
    flow.dispatch(flow.delegated(bobs, "bob's", price=100))

    assert results.channel_stats(owner.id, goal.id) == []
    assert [s.dispatched for s in results.channel_stats(owner.id)] == [1]
    assert [s.dispatched for s in results.channel_stats(bob.id)] == [1]
