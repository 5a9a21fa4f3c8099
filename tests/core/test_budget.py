"""Money: reservations are conditional updates on the goal and every envelope above a job."""

from __future__ import annotations

import pytest

from dispatcher.dispatch import budget, service
from dispatcher.errors import BudgetExceeded, InvalidTransition
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, DispatchState, Goal
from dispatcher.planning import tree


def _delegated(goal, parent=None, price=1000, assignments=1, title="job"):
    return tree.add_job(
        goal, parent=parent, title=title, price_cents=price, assignments=assignments,
        mode="delegate", channel="sandbox",
    )  # fmt: skip


def test_dispatch_reserves_price_times_assignments_and_stages_a_dispatch(goal):
    job = _delegated(goal, price=1500, assignments=2)
    dispatch = service.dispatch_job(job)
    db.session.refresh(goal)
    assert goal.reserved_cents == 3000
    assert job.status == Status.QUEUED
    assert dispatch.state == DispatchState.PENDING
    assert dispatch.amount_cents == 3000
    assert dispatch.idempotency_key.startswith("dsp_")


def test_dispatch_over_budget_raises_and_changes_nothing(goal):
    job = _delegated(goal, price=20_000)
    with pytest.raises(BudgetExceeded):
        service.dispatch_job(job)
    db.session.rollback()
    db.session.refresh(goal)
    assert goal.reserved_cents == 0
    assert job.status == Status.DRAFT
    assert db.session.query(Dispatch).count() == 0


def test_nested_envelope_refuses_what_the_goal_could_afford(goal):
    section = tree.add_job(goal, title="Pitching", budget_cents=1000)
    first = _delegated(goal, parent=section, price=800, title="a")
    second = _delegated(goal, parent=section, price=800, title="b")
    service.dispatch_job(first)
    with pytest.raises(BudgetExceeded, match="envelope"):
        service.dispatch_job(second)
    db.session.rollback()
    db.session.refresh(goal)
    db.session.refresh(section)
    assert goal.reserved_cents == 800
    assert section.reserved_cents == 800


def test_release_and_spend_move_money_up_the_tree(goal):
    section = tree.add_job(goal, title="Pitching", budget_cents=5000)
    job = _delegated(goal, parent=section, price=1000)
    budget.reserve(job, 1000)
    budget.spend(job, 1000, 700)
    db.session.commit()
    db.session.refresh(goal)
    db.session.refresh(section)
    assert (goal.reserved_cents, goal.spent_cents) == (0, 700)
    assert (section.reserved_cents, section.spent_cents) == (0, 700)


def test_dispatch_goal_is_all_or_nothing(goal):
    for n in range(3):
        _delegated(goal, price=4000, title=f"j{n}")  # 12,000 > 10,000 budget
    with pytest.raises(BudgetExceeded):
        service.dispatch_goal(goal)
    db.session.refresh(goal)
    assert goal.reserved_cents == 0
    assert db.session.query(Dispatch).count() == 0


def test_personal_goals_never_use_paid_channels(owner):
    personal = tree.create_goal(owner.id, title="Family dinners", personal=True, budget_cents=100)
    job = _delegated(personal, price=0)
    with pytest.raises(InvalidTransition, match="personal"):
        service.dispatch_job(job)


def test_only_delegated_leaves_dispatch(goal):
    kept = tree.add_job(goal, title="mine", mode="keep")
    with pytest.raises(InvalidTransition, match="delegate"):
        service.dispatch_job(kept)
    parent = _delegated(goal, title="parent")
    tree.split_job(parent, ["child"])
    with pytest.raises(InvalidTransition, match="leaves"):
        service.dispatch_job(parent)


def test_goal_money_columns_never_go_negative(goal):
    with pytest.raises(Exception):  # noqa: B017 - the database's CHECK constraint
        db.session.query(Goal).filter_by(id=goal.id).update({"reserved_cents": -1})
        db.session.commit()
    db.session.rollback()


def test_money_already_spent_counts_against_the_budget(goal):
    """$100 budget, $30 of it paid out: a $70.01 dispatch is refused, a $70.00 one fits
    exactly. A reservation check that forgot spent money would let the first through."""
    paid = _delegated(goal, price=3000, title="paid")
    service.dispatch_job(paid)
    budget.spend(paid, 3000, 3000)  # the platform confirmed the payment
    db.session.commit()
    db.session.refresh(goal)
    assert (goal.reserved_cents, goal.spent_cents) == (0, 3000)

    too_much = _delegated(goal, price=7001, title="too much")
    with pytest.raises(BudgetExceeded):
        service.dispatch_job(too_much)
    db.session.rollback()
    db.session.refresh(goal)
    db.session.refresh(too_much)
    assert too_much.status == Status.DRAFT and goal.reserved_cents == 0

    exact = _delegated(goal, price=7000, title="exact")
    dispatch = service.dispatch_job(exact)
    db.session.refresh(goal)
    assert dispatch.amount_cents == 7000 and exact.status == Status.QUEUED
    assert (goal.reserved_cents, goal.spent_cents, goal.available_cents) == (7000, 3000, 0)
