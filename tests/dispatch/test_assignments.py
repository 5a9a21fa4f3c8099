"""Assignments: each worker's place in an order holds its own money and its own work.

One test per finding of the assignments issue; each drives the real services (dispatch,
apply, review, cancel) and checks the money on the goal and the places themselves."""

from __future__ import annotations

import pytest
from fakes.work import deliver, event, place

from adapters.base import EventKind
from dispatch.helpers import delegated, staged
from dispatcher.dispatch import cancel, channels, places, push, review, send, service
from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.inbound.apply import apply_event
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Dispatch, Goal, MicroJob, Review

PRICE = 1_000  # dispatch.helpers.delegated's default price


def money(goal: Goal) -> tuple[int, int]:
    db.session.expire_all()
    goal = db.session.get(Goal, goal.id)
    return goal.reserved_cents, goal.spent_cents


def states(dispatch: Dispatch) -> list[str]:
    db.session.expire_all()
    return [p.status for p in db.session.get(Dispatch, dispatch.id).assignments]


def placed(goal: Goal, assignments: int) -> tuple[MicroJob, Dispatch]:
    job = delegated(goal, assignments=assignments)
    dispatch = place(service.dispatch_job(job))
    db.session.commit()
    return job, dispatch


def apply(dispatch: Dispatch, kind: EventKind, **fields) -> None:
    apply_event(dispatch.adapter, event(dispatch, kind, **fields))
    db.session.commit()


def queue(goal: Goal) -> list[int]:
    return [d.id for d in review.awaiting_review(goal.owner_id)]


def test_late_work_on_a_closed_order_is_never_charged_to_the_new_order(goal):
    job, first = placed(goal, assignments=2)
    one = deliver(first, "sub-1", worker="w1", slot="slot-0")
    apply(first, EventKind.TAKEN, event_id="t2", worker="w2", assignment_ref="slot-1")
    review.reject(one, reason="off topic")
    apply(first, EventKind.EXPIRED, event_id="exp")  # the platform closes the order
    db.session.refresh(job)
    assert job.status == Status.REJECTED
    assert money(goal) == (0, 0)

    second = service.retry_job(job)
    assert len(second.assignments) == 2  # both places are missing
    assert money(goal) == (2 * PRICE, 0)
    # worker 2's work for the first order arrives now
    late = deliver(first, "sub-2", worker="w2", slot="slot-1")
    assert (late.status, late.dispatch_id) == ("late", first.id)
    assert late.assignment.dispatch_id == first.id
    assert queue(goal) == []  # not waiting for review as if it were the new order's
    assert states(second) == ["open", "open"]
    assert money(goal) == (2 * PRICE, 0)  # the new order's money is untouched

    # the owner may accept it explicitly: paid from its own order's place
    review.accept(late)
    assert money(goal) == (3 * PRICE, 0)  # held again for its own place, "paying"
    apply(first, EventKind.PAID, event_id="paid-2", delivery_id="sub-2", payout_cents=PRICE)
    assert money(goal) == (2 * PRICE, PRICE)
    assert states(second) == ["open", "open"]


def test_cancelled_work_does_not_come_back_to_review_after_a_retry(goal):
    job, first = placed(goal, assignments=1)
    delivery = deliver(first, "sub-1")
    assert queue(goal) == [delivery.id]
    service.cancel_job(job)
    assert queue(goal) == []
    assert db.session.get(Delivery, delivery.id).status == "closed"
    service.retry_job(db.session.get(MicroJob, job.id))
    assert queue(goal) == []
    assert money(goal) == (PRICE, 0)  # only the new order's place is held


def test_rejecting_one_of_three_keeps_the_other_two_and_reorders_one(goal):
    job, first = placed(goal, assignments=3)
    subs = [deliver(first, f"sub-{i}", worker=f"w{i}", slot=f"slot-{i}") for i in range(3)]
    review.reject(subs[0], reason="off topic")
    db.session.refresh(job)
    assert job.status == Status.DELIVERED  # two still wait for review
    assert states(first) == ["rejected", "submitted", "submitted"]
    assert money(goal) == (2 * PRICE, 0)  # only the rejected place's money went back
    assert sorted(queue(goal)) == sorted([subs[1].id, subs[2].id])

    for sub in subs[1:]:
        review.accept(db.session.get(Delivery, sub.id))
        apply(first, EventKind.PAID, event_id=f"paid-{sub.id}", delivery_id=sub.external_id)
    db.session.refresh(job)
    assert job.status == Status.REJECTED  # one place is still missing
    assert money(goal) == (0, 2 * PRICE)
    second = service.retry_job(job)
    assert len(second.assignments) == 1  # a re-order covers only what is missing
    assert money(goal) == (PRICE, 2 * PRICE)


def test_a_revision_on_one_delivery_keeps_the_others_in_the_queue(goal):
    job, first = placed(goal, assignments=3)
    subs = [deliver(first, f"sub-{i}", worker=f"w{i}", slot=f"slot-{i}") for i in range(3)]
    review.request_revision(subs[1], feedback="cite two sources")
    assert sorted(queue(goal)) == sorted([subs[0].id, subs[2].id])
    db.session.refresh(job)
    assert job.status == Status.DELIVERED


def test_an_expired_order_releases_its_unfilled_places_and_keeps_delivered_work(goal):
    job, first = placed(goal, assignments=3)
    delivered = deliver(first, "sub-0", worker="w0", slot="slot-0")
    apply(first, EventKind.TAKEN, event_id="t1", worker="w1", assignment_ref="slot-1")
    apply(first, EventKind.EXPIRED, event_id="exp")
    assert states(first) == ["submitted", "expired", "expired"]
    assert money(goal) == (PRICE, 0)  # only the delivered place still holds money
    assert queue(goal) == [delivered.id]
    review.reject(db.session.get(Delivery, delivered.id), reason="off topic")
    assert money(goal) == (0, 0)
    assert db.session.get(Dispatch, first.id).state == "closed"


def test_a_paid_event_pays_only_the_submission_it_names(goal):
    job, first = placed(goal, assignments=2)
    a = deliver(first, "sub-a", worker="wa", slot="slot-0")
    b = deliver(first, "sub-b", worker="wb", slot="slot-1")
    review.accept(a, payout_cents=800)
    review.accept(db.session.get(Delivery, b.id))
    apply(first, EventKind.PAID, event_id="paid-a", delivery_id="sub-a")
    db.session.refresh(job)
    assert states(first) == ["paid", "accepted"]
    assert job.status == Status.ACCEPTED  # b's payment is not confirmed yet
    assert money(goal) == (PRICE, 800)
    apply(first, EventKind.PAID, event_id="paid-a-again", delivery_id="sub-a")
    assert money(goal) == (PRICE, 800)  # paying twice for one place changes nothing
    apply(first, EventKind.PAID, event_id="paid-b", delivery_id="sub-b")
    db.session.refresh(job)
    assert job.status == Status.PAID and money(goal) == (0, 800 + PRICE)


# -- races: every review decision takes the job's lock ---------------------------------------
def test_two_quick_accepts_of_one_delivery_pay_once(app, goal):
    job, first = placed(goal, assignments=1)
    delivery = deliver(first, "sub-1")
    stale = db.session.get(Delivery, delivery.id)  # the first page load
    with app.app_context():  # the second click, from another request
        review.accept(db.session.get(Delivery, delivery.id))
    with pytest.raises(InvalidTransition, match="already accepted"):
        review.accept(stale)
    db.session.rollback()
    assert db.session.query(Review).count() == 1
    assert money(goal) == (PRICE, 0)  # held once, "paying"


def test_an_accept_that_loses_the_race_to_a_cancel_is_refused(app, goal):
    job, first = placed(goal, assignments=1)
    delivery = deliver(first, "sub-1")
    stale = db.session.get(Delivery, delivery.id)
    assert stale.job.status == Status.DELIVERED
    with app.app_context():  # the owner cancels in another tab
        service.cancel_job(db.session.get(MicroJob, job.id))
    with pytest.raises(InvalidTransition):
        review.accept(stale)
    db.session.rollback()
    assert db.session.query(Review).count() == 0
    assert money(goal) == (0, 0)
    assert db.session.get(MicroJob, job.id).status == Status.CANCELLED


def test_missing_places_counts_every_order(goal):
    job, first = placed(goal, assignments=3)
    assert places.missing(job) == 0
    apply(first, EventKind.EXPIRED, event_id="exp")
    assert places.missing(db.session.get(MicroJob, job.id)) == 3


# -- money follows the platform ---------------------------------------------------------------
def test_an_acceptance_the_platform_refuses_goes_back_to_review_with_its_money_held(goal, sandbox):

    sandbox.control(pause_workers=True)
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "placed"
    # work the platform does not know (it never took this submission): it refuses to pay
    delivery = deliver(db.session.get(Dispatch, dispatch.id), "sub-unknown")
    accepted = review.accept(delivery, rating=5)
    assert money(goal) == (PRICE, 0)  # paying
    assert push.push_review(accepted.id).startswith("refused")
    db.session.expire_all()
    assert db.session.get(Review, accepted.id).push_state == "refused"
    assert money(goal) == (PRICE, 0)  # nothing was spent: the platform did not pay
    assert db.session.get(MicroJob, job.id).status == Status.DELIVERED
    assert queue(goal) == [delivery.id]  # back with the owner, the refusal on the timeline
    assert states(dispatch) == ["submitted"]


def test_an_approval_at_the_platform_that_beats_our_reject_is_paid_in_the_books(goal, sandbox):
    from adapters.base import DeliveryRef

    sandbox.control(pause_workers=False)
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "placed"
    db.session.refresh(dispatch)
    adapter = channels.guarded_adapter(dispatch)
    from fakes.sandbox_fixture import wait_until

    wait_until(
        lambda: (
            [e for e in adapter.poll(dispatch.external_id).events if e.kind == EventKind.DELIVERED]
            or None
        )  # fmt: skip
    )
    sandbox.control(pause_workers=True)
    for e in adapter.poll(dispatch.external_id).events:
        apply_event("sandbox", e)
    db.session.commit()
    delivery = db.session.get(MicroJob, job.id).deliveries[0]
    # someone approved it at the platform (paying 700) before our reject got there
    adapter.accept(DeliveryRef(dispatch.external_id, delivery.external_id), 700)
    rejected = review.reject(delivery, reason="off topic")
    assert money(goal) == (0, 0)  # our reject released the money...
    assert push.push_review(rejected.id).startswith("refused")
    assert money(goal) == (0, 700)  # ...but the platform paid: the books follow it
    assert states(dispatch) == ["paid"]
    assert db.session.get(MicroJob, job.id).status == Status.PAID
    # the platform's own "paid" webhook changes nothing more
    for e in adapter.poll(dispatch.external_id).events:
        apply_event("sandbox", e)
    db.session.commit()
    assert money(goal) == (0, 700)


def test_a_cancel_that_ran_while_the_order_was_being_placed_is_owed_again(goal, sandbox):
    """Two dispatch workers: one is placing the order, the other runs the owner's cancel,
    finds no order at the platform yet and settles. The first one's call then creates the
    order but times out: the cancel is owed again, and the order is cancelled."""
    from dispatcher.errors import RetryableAdapterError

    sandbox.control(pause_workers=True)
    job = delegated(goal)
    dispatch = staged(job)
    claimed = send.claim(dispatch.id)  # worker 1 takes the lease and counts its attempt
    assert claimed is not None
    spec, key = channels.job_spec(job, claimed), claimed.idempotency_key
    db.session.commit()
    with db.session.no_autoflush:
        service.cancel_job(db.session.get(MicroJob, job.id))  # the owner cancels
    assert cancel.cancel_at_platform(dispatch.id) == "no order at the platform"  # worker 2
    receipt = channels.guarded_adapter(claimed).dispatch(spec, key)  # worker 1's call lands
    outcome = send._retry_later(  # ...but its answer was lost
        claimed, RetryableAdapterError("sandbox", "read timed out"), max_attempts=4
    )
    assert "cancel owed again" in outcome
    assert cancel.cancel_at_platform(dispatch.id) == "cancelled at the platform"
    assert sandbox.market.get_order(receipt.external_id)["status"] == "cancelled"
    assert money(goal) == (0, 0)


# -- capabilities -------------------------------------------------------------------------
class SingleWorkerSandbox:
    """The sandbox seen as a channel with one worker per job and no revisions."""

    @staticmethod
    def make():
        from adapters.base import Capability
        from adapters.sandbox import SandboxAdapter

        class Single(SandboxAdapter):
            capabilities = SandboxAdapter.capabilities - {
                Capability.REDUNDANCY,
                Capability.REVISION,
            }

        return Single


@pytest.fixture
def single_worker_channel(app):
    from adapters.base import AdapterRegistry

    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        app.config["SETTINGS"], classes={"sandbox": SingleWorkerSandbox.make()}
    )


def test_several_assignments_need_a_channel_with_redundancy(goal, single_worker_channel):
    from dispatcher.errors import InvalidChange

    job = delegated(goal, assignments=2)
    with pytest.raises(InvalidChange, match="one worker per job"):
        service.dispatch_job(job)
    db.session.rollback()
    assert money(goal) == (0, 0)
    assert db.session.query(Dispatch).count() == 0


def test_a_revision_is_refused_before_anything_is_sent_on_a_channel_without_them(
    goal, single_worker_channel
):
    from dispatcher.errors import Unsupported

    job, first = placed(goal, assignments=1)
    delivery = deliver(first, "sub-1")
    with pytest.raises(Unsupported, match="does not take revision requests"):
        review.request_revision(delivery, feedback="shorter")
    db.session.rollback()
    assert db.session.query(Review).count() == 0
    assert db.session.get(MicroJob, job.id).status == Status.DELIVERED
    assert queue(goal) == [delivery.id]


def test_a_place_nobody_took_expires_when_the_platform_names_it(goal):
    """The platform names the place it expires (its slot); a place nobody took has no
    platform reference yet, and still expires (its money back), not left open for ever."""
    job, first = placed(goal, assignments=2)
    deliver(first, "sub-0", worker="w0", slot="slot-0")
    apply(first, EventKind.EXPIRED, event_id="exp-1", assignment_ref="slot-1")
    assert states(first) == ["submitted", "expired"]
    assert money(goal) == (PRICE, 0)
