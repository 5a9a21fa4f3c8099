"""dispatch_job's folded reads and folded reservation (issue 12, idle latency): each fold
still refuses what the four separate reads and the SQL reservation refused, with the same
words, and stores the same rows and money. Each job is reloaded in a fresh session first, so
the one read after the lock is what the checks see (nothing left over in the identity map)."""

from __future__ import annotations

import pytest
from fakes.connections import connect_sandbox
from fakes.work import deliver, event, place
from sqlalchemy import text

from adapters.base import EventKind
from dispatch.helpers import delegated, dispatch_at_once, make_owner
from dispatcher import connections
from dispatcher.dispatch import review, service
from dispatcher.errors import BudgetExceeded, InvalidTransition
from dispatcher.extensions import db
from dispatcher.inbound.apply import apply_event
from dispatcher.lifecycle import Status
from dispatcher.models import Assignment, Delivery, Dispatch, Goal, MicroJob
from dispatcher.planning import tree

PRICE = 1_000


def fresh(job_id: int) -> MicroJob:
    db.session.remove()
    return db.session.get(MicroJob, job_id)


def money(goal_id: int) -> tuple[int, int]:
    db.session.expire_all()
    goal = db.session.get(Goal, goal_id)
    return goal.reserved_cents, goal.spent_cents


def refused(job_id: int, error: type[Exception], words: str) -> None:
    """dispatch_job refuses the job with `words`, and nothing is left behind."""
    job = fresh(job_id)
    goal_id = job.goal_id
    with pytest.raises(error, match=words):
        service.dispatch_job(job)
    db.session.rollback()
    assert fresh(job_id).status == Status.DRAFT
    assert money(goal_id) == (0, 0)
    assert db.session.query(Dispatch).filter_by(job_id=job_id).count() == 0


# -- the children flag ---------------------------------------------------------------------------
def test_a_job_with_children_is_still_refused(goal):
    """The read's children flag: a parent must not pass as a leaf (an unconditional empty
    `children` would let it through and order the parent)."""
    parent = delegated(goal, title="series")
    tree.add_job(goal, title="part one", parent=parent)
    with db.engine.begin() as other:  # delegated with a channel, as a leaf would be
        other.execute(text("UPDATE micro_jobs SET mode = 'delegate', channel = 'sandbox' "
                           "WHERE id = :id"), {"id": parent.id})  # fmt: skip
    refused(parent.id, InvalidTransition, "dispatch its leaves instead")


def test_a_leaf_passes_while_a_job_elsewhere_has_children(goal):
    """The flag is about this job: another job's children do not refuse it."""
    parent = tree.add_job(goal, title="series")
    tree.add_job(goal, title="part one", parent=parent)
    job = delegated(goal, title="leaf", price=PRICE)
    service.dispatch_job(fresh(job.id))
    assert fresh(job.id).status == Status.QUEUED


# -- the connection ------------------------------------------------------------------------------
def test_a_job_whose_connection_was_deleted_is_refused_with_the_same_words(app, goal, owner):
    job = delegated(goal, price=PRICE)
    connections.delete(connections.for_adapter(owner.id, "sandbox"))
    db.session.commit()
    assert fresh(job.id).connection_id is None
    refused(job.id, InvalidTransition, "connect a sandbox account first")


def test_a_connection_of_another_owner_is_never_used(app, goal, owner):
    """A job pointing at someone else's connection (the read joins on the id alone): with no
    connection of the owner's own it is refused; with one, the order goes through the
    owner's own, never the other's."""
    owner_id = owner.id
    other = connect_sandbox(make_owner("bob@example.com").id, label="Bob's")
    mine = connections.for_adapter(owner_id, "sandbox")
    other_id, other_owner, mine_id = other.id, other.owner_id, mine.id
    job_id = delegated(goal, price=PRICE).id

    def point_at(connection_id: int) -> None:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE micro_jobs SET connection_id = :c WHERE id = :id"),
                         {"c": connection_id, "id": job_id})  # fmt: skip

    point_at(other_id)
    with db.engine.begin() as conn:  # the owner's own connection is gone
        conn.execute(text("UPDATE connections SET owner_id = :o WHERE id = :id"),
                     {"o": other_owner, "id": mine_id})  # fmt: skip
    refused(job_id, InvalidTransition, "connect a sandbox account first")

    with db.engine.begin() as conn:  # the owner has their connection again
        conn.execute(text("UPDATE connections SET owner_id = :o WHERE id = :id"),
                     {"o": owner_id, "id": mine_id})  # fmt: skip
    point_at(other_id)
    dispatch_id = service.dispatch_job(fresh(job_id)).id
    db.session.expire_all()
    assert db.session.get(Dispatch, dispatch_id).connection_id == mine_id
    assert fresh(job_id).connection_id == mine_id


def test_a_personal_goal_still_never_goes_to_a_paid_channel(owner):
    """The read's goal is the job's goal: its `personal` still refuses a paid channel."""
    goal = tree.create_goal(owner.id, title="my reading", budget_cents=10_000, personal=True)
    job = delegated(goal, price=PRICE)
    refused(job.id, InvalidTransition, "personal goals never go to paid channels")


# -- the places ----------------------------------------------------------------------------------
def test_a_redispatch_after_a_rejection_opens_only_the_missing_places(goal):
    """Three places: one paid, one rejected, one expired unfilled. The read counts only the
    paid one as live (not the finished ones, not another job's live places): the re-order
    opens two places, and holds two places' money."""
    goal_id = goal.id
    busy = delegated(goal, title="another job", price=PRICE, assignments=3)
    service.dispatch_job(busy)  # three live places of another job, same goal
    job = delegated(goal, title="three takes", price=PRICE, assignments=3)
    first = place(service.dispatch_job(fresh(job.id)))
    db.session.commit()
    paid, rejected = (deliver(first, f"sub-{i}", worker=f"w{i}", slot=f"slot-{i}")
                      for i in range(2))  # fmt: skip
    review.accept(db.session.get(Delivery, paid.id))
    db.session.commit()
    first = db.session.get(Dispatch, first.id)
    apply_event(first.adapter, event(first, EventKind.PAID, event_id="paid-0",
                                     delivery_id=paid.external_id))  # fmt: skip
    db.session.commit()
    review.reject(db.session.get(Delivery, rejected.id), reason="off topic")
    db.session.commit()
    first = db.session.get(Dispatch, first.id)
    apply_event(first.adapter, event(first, EventKind.EXPIRED, event_id="exp"))
    db.session.commit()
    assert fresh(job.id).status == Status.REJECTED
    assert money(goal_id) == (3 * PRICE, PRICE)  # only the other job's places are held

    second = service.retry_job(fresh(job.id))
    db.session.expire_all()
    second = db.session.get(Dispatch, second.id)
    assert [p.position for p in second.assignments] == [1, 2]
    assert second.amount_cents == 2 * PRICE
    assert money(goal_id) == (5 * PRICE, PRICE)
    assert fresh(job.id).reserved_cents == 2 * PRICE


# -- the job's own reservation, written with its status -------------------------------------------
def test_a_reservation_committed_before_the_lock_is_kept(goal):
    """The job's reservation is now an absolute value written with its status: it must add
    to what the lock read, not to the stale row the request loaded (money another process
    reserved on the job meanwhile, e.g. a rehold, would otherwise vanish)."""
    goal_id = goal.id
    job = fresh(delegated(goal, price=PRICE).id)
    assert job.reserved_cents == 0
    with db.engine.begin() as other:  # another process holds 300 on this job, after our load
        other.execute(text("UPDATE micro_jobs SET reserved_cents = 300 WHERE id = :id"),
                      {"id": job.id})  # fmt: skip
        other.execute(text("UPDATE goals SET reserved_cents = 300 WHERE id = :id"),
                      {"id": goal_id})  # fmt: skip
    service.dispatch_job(job)
    assert fresh(job.id).reserved_cents == 300 + PRICE
    assert money(goal_id) == (300 + PRICE, 0)


def test_the_jobs_own_envelope_still_refuses(goal):
    """The locked job's envelope is checked in Python now: same refusal, same words."""
    job = delegated(goal, title="capped", price=PRICE, budget_cents=PRICE - 1)
    refused(job.id, BudgetExceeded, "the envelope on 'capped' has no room for")


def test_an_envelope_above_the_job_still_refuses_and_still_holds(goal):
    """Envelopes above the job keep the guarded UPDATE: one refuses, one holds the money."""
    goal_id = goal.id
    tight = tree.add_job(goal, title="tight", budget_cents=PRICE - 1)
    job = delegated(goal, title="under tight", price=PRICE, parent=tight)
    refused(job.id, BudgetExceeded, "the envelope on 'tight' has no room for")

    goal = db.session.get(Goal, goal_id)
    roomy = tree.add_job(goal, title="roomy", budget_cents=5 * PRICE)
    ok = delegated(goal, title="under roomy", price=PRICE, parent=roomy, budget_cents=PRICE)
    roomy_id, ok_id = roomy.id, ok.id
    service.dispatch_job(fresh(ok_id))
    db.session.expire_all()
    assert db.session.get(MicroJob, roomy_id).reserved_cents == PRICE
    assert fresh(ok_id).reserved_cents == PRICE
    assert money(goal_id) == (PRICE, 0)


def test_a_refused_reservation_leaves_no_order_even_if_the_caller_commits(goal):
    """The order is inserted before the money is reserved (for its id): a refusal must take
    it out again, or a caller committing after the refusal would stage an unpaid order."""
    goal_id = goal.id
    job = delegated(goal, title="too dear", price=20_000)
    with pytest.raises(BudgetExceeded, match="goal budget left is"):
        service.dispatch_job(fresh(job.id))
    db.session.commit()
    assert db.session.query(Dispatch).count() == 0
    assert money(goal_id) == (0, 0)
    assert fresh(job.id).status == Status.DRAFT


def test_two_concurrent_dispatches_past_the_budget_refuse_one(app, owner):
    """Two requests at once, each with its own session, for two jobs the goal can pay only
    one of: the goal's guarded UPDATE still refuses one, whatever the interleaving."""
    goal = tree.create_goal(owner.id, title="tight", budget_cents=PRICE + PRICE // 2)
    goal_id = goal.id
    ids = [delegated(goal, title=f"job {i}", price=PRICE).id for i in range(2)]
    db.session.remove()
    outcomes = dispatch_at_once(app, ids)
    assert sorted(outcomes.values()) == ["queued", "refused"]
    assert money(goal_id) == (PRICE, 0)
    statuses = {i: fresh(i).status for i in ids}
    assert sorted(statuses.values()) == [Status.DRAFT, Status.QUEUED]
    assert {i: fresh(i).reserved_cents for i in ids} == {
        i: PRICE if statuses[i] == Status.QUEUED else 0 for i in ids
    }


def test_an_envelope_refusal_leaves_no_order_or_places_even_if_the_caller_commits(goal):
    """On PostgreSQL the goal's reservation, the order and its places are one statement
    (request_folds.py); an envelope above the job refuses after it: the order and its places
    go again, so a caller committing after the refusal stores neither."""
    goal_id = goal.id
    tight = tree.add_job(goal, title="tight", budget_cents=PRICE - 1)
    job = delegated(goal, title="under tight", price=PRICE, parent=tight, assignments=2)
    with pytest.raises(BudgetExceeded, match="the envelope on 'tight' has no room for"):
        service.dispatch_job(fresh(job.id))
    db.session.commit()
    assert db.session.query(Dispatch).count() == 0
    assert db.session.query(Assignment).filter_by(job_id=job.id).count() == 0
    assert fresh(job.id).status == Status.DRAFT
    assert money(goal_id) == (0, 0)
