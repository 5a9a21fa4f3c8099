"""Pushing the owner's decision to the platform, effectively once: a push lost with Redis is
found again by the reconciler (accept, revise and reject alike), a push that reached the
platform before its worker died is adopted rather than sent twice, and a platform that
refuses a repeat is asked what it holds."""

from __future__ import annotations

import pytest
from fakes.sandbox_fixture import wait_until
from sqlalchemy import update

from adapters.base import AdapterRegistry, DeliveryRef, EventKind
from adapters.sandbox import SandboxAdapter
from dispatch.helpers import delegated
from dispatcher import reconcile
from dispatcher.dispatch import channels, push, review, send, service
from dispatcher.errors import AdapterError, RetryableAdapterError
from dispatcher.extensions import db
from dispatcher.inbound import apply
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Event, PushState, Review
from dispatcher.queues import DISPATCH, get_queue

#: decision -> (how the owner makes it, the submission's status at the sandbox, the job's
#: status once the platform has it)
DECISIONS = {
    "reject": (lambda d: review.reject(d, reason="off topic"), "rejected", Status.REJECTED),
    "revise": (
        lambda d: review.request_revision(d, feedback="cite two sources"),
        "revision_requested",
        Status.REVISION_REQUESTED,
    ),
    "accept": (lambda d: review.accept(d, rating=5), "accepted", Status.PAID),
}


class StrictSandbox(SandboxAdapter):
    """The sandbox seen as a platform that refuses a repeated decision (409) instead of
    answering it again, as many real ones do."""

    def _review(self, delivery, action, body):
        if self.decision(delivery) is not None:
            raise AdapterError(self.name, "request refused", status=409, body="already reviewed")
        super()._review(delivery, action, body)


@pytest.fixture
def delivered(goal, sandbox):
    """Place a job at the sandbox and let its workers deliver; the platform's own events are
    applied as its webhooks would be. The workers then pause, so nothing else moves."""

    def _delivered(assignments: int = 1) -> list[Delivery]:
        sandbox.control(pause_workers=False)
        job = delegated(goal, assignments=assignments)
        dispatch = service.dispatch_job(job)
        assert send.send_dispatch(dispatch.id) == "placed"
        get_queue(DISPATCH).empty()  # the send ran here, not through a worker
        db.session.refresh(dispatch)
        adapter = channels.guarded_adapter(dispatch)

        def all_delivered():
            try:
                events = adapter.poll(dispatch.external_id).events
            except RetryableAdapterError:  # a busy machine: ask again
                return None
            done = sum(e.kind == EventKind.DELIVERED for e in events)
            return events if done >= assignments else None

        events = wait_until(all_delivered)
        sandbox.control(pause_workers=True)
        for event in events:
            apply.apply_event("sandbox", event)
        db.session.commit()
        db.session.refresh(job)
        assert job.status == Status.DELIVERED
        return list(job.deliveries)

    return _delivered


def queued_ids() -> list[str]:
    return get_queue(DISPATCH).get_job_ids()


def at_platform(sandbox, delivery: Delivery) -> str:
    order = sandbox.market.get_order(delivery.dispatch.external_id)
    (sub,) = [s for s in order["submissions"] if s["id"] == delivery.external_id]
    return sub["status"]


def review_calls(sandbox) -> dict[str, int]:
    """The platform's own count of review decisions it applied, and of repeats it answered."""
    return {k: v for k, v in sandbox.stats()["counters"].items() if k.startswith("review")}


def ref(delivery: Delivery) -> DeliveryRef:
    return DeliveryRef(delivery.dispatch.external_id, delivery.external_id)


def timeline(job_id: int, kind: str) -> list[dict]:
    return [e.data for e in db.session.query(Event).filter_by(job_id=job_id, kind=kind)]


@pytest.mark.parametrize("decision", ["reject", "revise", "accept"])
def test_a_push_wiped_from_redis_is_pushed_after_reconcile_exactly_once(
    decision, delivered, sandbox, redis_server, run_jobs
):
    decide, platform_status, job_status = DECISIONS[decision]
    (delivery,) = delivered()
    decided = decide(delivery)
    job_id = push.review_job_id(decided.id)
    assert queued_ids() == [job_id]
    redis_server.flushall()  # Redis wiped before any worker took the push
    assert queued_ids() == []

    assert reconcile.reconcile()["reviews"] == 1
    assert queued_ids() == [job_id]
    assert reconcile.reconcile()["reviews"] == 0  # the same push is never queued twice
    assert queued_ids() == [job_id]

    run_jobs()
    db.session.expire_all()
    assert at_platform(sandbox, delivery) == platform_status
    assert review_calls(sandbox) == {f"reviews_{platform_status}": 1}  # once, no repeat
    assert db.session.get(Review, decided.id).push_state == PushState.PUSHED
    assert delivery.job.status == job_status

    redis_server.flushall()
    assert reconcile.reconcile()["reviews"] == 0  # confirmed: nothing is owed any more
    assert queued_ids() == []


@pytest.mark.parametrize("decision", ["reject", "revise"])
def test_a_push_that_reached_the_platform_before_its_worker_died_is_adopted(
    decision, delivered, sandbox, redis_server, run_jobs
):
    decide, platform_status, job_status = DECISIONS[decision]
    (delivery,) = delivered()
    decided = decide(delivery)
    redis_server.flushall()
    # A worker counted its attempt and told the platform, then died before recording it.
    db.session.execute(update(Review).where(Review.id == decided.id).values(push_attempts=1))
    db.session.commit()
    adapter = channels.guarded_adapter(delivery.dispatch)
    if decision == "reject":
        adapter.reject(ref(delivery), decided.feedback)
    else:
        adapter.request_revision(ref(delivery), decided.feedback)

    assert reconcile.reconcile()["reviews"] == 1
    run_jobs()
    db.session.expire_all()
    assert review_calls(sandbox) == {f"reviews_{platform_status}": 1}  # looked up, not re-sent
    assert db.session.get(Review, decided.id).push_state == PushState.PUSHED
    (pushed,) = timeline(delivery.job_id, "review_pushed")
    assert pushed == {"review_id": decided.id, "decision": decision, "adopted": True}
    assert delivery.job.status == job_status


def test_a_platform_that_refuses_a_repeat_is_asked_what_it_holds(app, delivered, sandbox):
    settings = app.config["SETTINGS"]
    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        settings, classes={"sandbox": StrictSandbox}
    )
    (same,) = delivered()
    (other,) = delivered()
    adapter = channels.guarded_adapter(same.dispatch)
    adapter.reject(ref(same), "off topic")  # the platform has our decision already...
    adapter.accept(ref(other), 1000)  # ...and, for the other, someone accepted it there

    rejected = review.reject(same, reason="off topic")
    assert push.push_review(rejected.id) == "adopted"  # 409, then the look-up: the same
    assert db.session.get(Review, rejected.id).push_state == PushState.PUSHED

    db.session.refresh(other)
    refused = review.reject(other, reason="off topic")
    assert push.push_review(refused.id) == (
        "refused: the platform already holds another decision: accept (payout 1000 cents)"
    )
    assert db.session.get(Review, refused.id).push_state == PushState.REFUSED
    (failed,) = timeline(other.job_id, "review_push_failed")
    assert failed["review_id"] == refused.id and "another decision: accept" in failed["reason"]
    assert reconcile.reconcile()["reviews"] == 0  # refused for good: the owner was told
    assert review_calls(sandbox) == {"reviews_rejected": 1, "reviews_accepted": 1}


def test_a_job_is_paid_once_every_acceptance_is_confirmed(delivered, sandbox, redis_server):
    first, second = delivered(assignments=2)
    one = review.accept(first, rating=4)
    two = review.accept(db.session.get(Delivery, second.id), rating=5)
    redis_server.flushall()
    assert push.push_review(two.id) == "accept"
    db.session.expire_all()
    assert first.job.status == Status.ACCEPTED  # the first acceptance is still owed
    assert reconcile.reconcile()["reviews"] == 1
    assert push.push_review(one.id) == "accept"
    db.session.expire_all()
    assert first.job.status == Status.PAID
    assert len(timeline(first.job_id, "pay")) == 1
    assert push.push_review(one.id) == "already pushed"  # a stray second run does nothing
    assert review_calls(sandbox) == {"reviews_accepted": 2}


def test_a_push_already_out_is_not_sent_again_by_a_second_attempt(delivered, sandbox, redis_server):
    """A worker judged dead while it still runs (its liveness lost with Redis) gets its push
    re-run beside it: the second attempt waits for the first's lease instead of finding nothing
    at the platform yet and sending the decision a second time."""
    from rq import Retry

    (delivery,) = delivered()
    decided = review.request_revision(delivery, feedback="cite two sources")
    redis_server.flushall()
    # the first attempt has claimed the push and is out at the platform (not answered yet)
    assert push._claim(db.session.get(Review, decided.id))
    db.session.commit()
    second = push.push_review(decided.id)
    assert isinstance(second, Retry)  # it comes back when the lease may have run out
    assert review_calls(sandbox) == {}  # nothing was sent by the second attempt
    assert db.session.get(Review, decided.id).push_attempts == 1
