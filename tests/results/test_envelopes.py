"""Budget envelopes down the tree hold: a dispatch reserves against the goal and every ancestor
envelope in one transaction, so no envelope is ever overspent; personal goals stay unpaid."""

from __future__ import annotations

import pytest
from dispatch.helpers import dispatch_at_once

from adapters.sandbox import SandboxAdapter
from dispatcher import connections, results
from dispatcher.dispatch import service
from dispatcher.errors import BudgetExceeded, InvalidTransition
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, Goal, MicroJob
from dispatcher.planning import tree


def _money(*rows):
    for row in rows:
        db.session.refresh(row)
    return [(row.reserved_cents, row.spent_cents) for row in rows]


@pytest.fixture
def nested(goal):
    """goal (100.00) > Outreach (envelope 20.00) > Week 1 (no envelope) > Pitches (15.00)."""
    outreach = tree.add_job(goal, title="Outreach", budget_cents=2000)
    week = tree.add_job(goal, title="Week 1", parent=outreach)
    pitches = tree.add_job(goal, title="Pitches", parent=week, budget_cents=1500)
    return outreach, week, pitches


def test_a_nested_envelope_refuses_what_the_goal_could_afford(goal, nested, flow):
    outreach, week, pitches = nested
    first = flow.delegated(goal, "pitch 1", price=1000, parent=pitches)
    second = flow.delegated(goal, "pitch 2", price=1000, parent=pitches)
    flow.dispatch(first)
    assert goal.available_cents >= 1000  # the goal alone would let it through

    with pytest.raises(BudgetExceeded, match="Pitches"):
        service.dispatch_job(second)
    db.session.rollback()

    assert _money(goal, outreach, week, pitches, second) == [(1000, 0)] * 4 + [(0, 0)]
    assert db.session.get(MicroJob, second.id).status == Status.DRAFT
    assert db.session.query(Dispatch).filter_by(job_id=second.id).count() == 0


def test_an_envelope_two_levels_up_is_checked_too(goal, nested, flow):
    outreach, week, pitches = nested
    flow.dispatch(flow.delegated(goal, "pitch", price=1400, parent=pitches))
    flow.dispatch(flow.delegated(goal, "follow-up", price=500, parent=week))  # 1,900 of 2,000
    straggler = flow.delegated(goal, "one more", price=200, parent=week)  # Week 1 has no cap

    with pytest.raises(BudgetExceeded, match="Outreach"):
        service.dispatch_job(straggler)
    db.session.rollback()

    assert _money(goal, outreach, week, pitches) == [(1900, 0), (1900, 0), (1900, 0), (1400, 0)]


def test_spend_counts_against_the_envelope_after_review(goal, nested, flow):
    outreach, week, pitches = nested
    first = flow.delegated(goal, "pitch 1", price=1000, parent=pitches)
    flow.accept(flow.deliver(flow.dispatch(first)), payout=800)
    assert _money(goal, outreach, pitches) == [(0, 800)] * 3

    fits = flow.delegated(goal, "pitch 2", price=700, parent=pitches)  # 800 + 700 = 1,500
    flow.dispatch(fits)
    too_much = flow.delegated(goal, "pitch 3", price=1, parent=pitches)
    with pytest.raises(BudgetExceeded):
        service.dispatch_job(too_much)
    db.session.rollback()

    rollup = results.rollup(goal)
    envelopes = {e.title: e for e in rollup.envelopes}
    assert envelopes["Pitches"].available_cents == 0
    assert envelopes["Outreach"].available_cents == 2000 - 1500
    assert rollup.available_cents == 10_000 - 1500


def test_a_rejected_job_gives_its_reservation_back(goal, nested, flow):
    *_, pitches = nested
    job = flow.delegated(goal, "pitch", price=1500, parent=pitches)
    flow.reject(flow.deliver(flow.dispatch(job)))
    assert _money(goal, pitches) == [(0, 0), (0, 0)]
    flow.dispatch(flow.delegated(goal, "another", price=1500, parent=pitches))


def test_dispatch_goal_is_refused_whole_when_one_envelope_is_short(goal, nested, flow):
    outreach, week, pitches = nested
    flow.delegated(goal, "in pitches", price=1000, parent=pitches)
    flow.delegated(goal, "in pitches too", price=1000, parent=pitches)
    flow.delegated(goal, "top level", price=100)

    with pytest.raises(BudgetExceeded):
        service.dispatch_goal(goal)

    assert _money(goal, outreach, week, pitches) == [(0, 0)] * 4
    assert db.session.query(Dispatch).count() == 0


def test_concurrent_dispatches_never_overspend_an_envelope(app, goal, nested, flow):
    """Four workers dispatch four jobs that fit the goal but not the envelope, all at once."""
    *_, pitches = nested
    ids = [flow.delegated(goal, f"pitch {n}", price=600, parent=pitches).id for n in range(4)]
    outcomes = list(dispatch_at_once(app, ids).values())

    assert sorted(outcomes) == ["queued", "queued", "refused", "refused"]  # 2 x 600 <= 1,500
    db.session.expire_all()
    assert db.session.get(MicroJob, pitches.id).reserved_cents == 1200
    assert db.session.get(Goal, goal.id).reserved_cents == 1200
    queued = db.session.query(MicroJob).filter(MicroJob.status == Status.QUEUED).count()
    assert queued == 2


class FreeChannel(SandboxAdapter):
    """An unpaid channel (a teammate, say): personal goals may use it."""

    name = "free"
    paid = False


def test_personal_goals_never_delegate_to_paid_channels(app, owner, flow):
    from adapters.base import AdapterRegistry

    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        app.config["SETTINGS"], {"sandbox": SandboxAdapter, "free": FreeChannel}
    )
    connections.create(owner.id, "free", "Grandma's", {"api_key": "sbx_unused"})
    db.session.commit()
    family = tree.create_goal(owner.id, title="Family", personal=True, budget_cents=5000)
    paid = flow.delegated(family, "Hire a tutor", price=1000, channel="sandbox")
    free = flow.delegated(family, "Ask grandma", price=0, channel="free")

    with pytest.raises(InvalidTransition, match="personal goals never go to paid channels"):
        service.dispatch_job(paid)
    db.session.rollback()
    assert _money(family) == [(0, 0)]
    assert db.session.get(MicroJob, paid.id).status == Status.DRAFT

    service.dispatch_job(free)
    assert db.session.get(MicroJob, free.id).status == Status.QUEUED
