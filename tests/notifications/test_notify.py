"""Notifications to the owner, sent to a real SMTP server and a loopback "Slack"."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta

import pytest
from fakes.smtp import Inbox, smtp_server
from sqlalchemy import func, select
from today.conftest import make_owner

from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.mail import send_due_digests
from dispatcher.models import Notification, NotificationSettings
from dispatcher.models._base import utcnow
from dispatcher.notifications.prefs import EmailMode, prefs_of, save_prefs
from dispatcher.notifications.send import NotifyError, notify_owners
from dispatcher.planning import tree


def _later(minutes: float = 1) -> datetime:
    """A run's clock once a burst has settled."""
    return utcnow() + timedelta(minutes=minutes)


def _job(goal, title: str):
    return tree.add_job(goal, title=title, mode="delegate", channel="sandbox", price_cents=100)


def _deliver(flow, goal, title: str):
    return flow.deliver(flow.dispatch(_job(goal, title)))


def _immediate(owner, slack_url: str | None = None) -> None:
    save_prefs(owner.id, EmailMode.IMMEDIATE, slack_url)
    db.session.commit()


def _text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _claims(channel: str = "email") -> int:
    return db.session.scalar(
        select(func.count()).select_from(Notification).where(Notification.channel == channel)
    )


def test_a_burst_of_50_deliveries_is_one_mail(inbox, owner, goal, flow):
    _immediate(owner)
    for n in range(50):
        _deliver(flow, goal, f"Guest post {n:02d}")

    assert notify_owners(_later()) == {owner.id: {"email": 50}}
    assert notify_owners(_later(2)) == {}  # nothing left to tell

    assert len(inbox.messages) == 1
    rcpt, message = inbox.envelopes[0]
    assert rcpt == ["ann@example.com"]
    assert message["Subject"] == "Dispatcher: 50 new deliveries"
    text = _text(message)
    assert "NEW DELIVERIES TO REVIEW (50)" in text
    assert "Guest post 00: delivered, waiting for your review" in text
    assert "Guest post 49: delivered, waiting for your review" in text
    assert "http://dispatcher.test/review" in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Guest post 49" in html


def test_a_burst_still_arriving_waits_until_it_is_quiet(inbox, owner, goal, flow):
    _immediate(owner)
    _deliver(flow, goal, "First")

    assert notify_owners(utcnow() + timedelta(seconds=2)) == {}  # may be the start of a burst
    _deliver(flow, goal, "Second")
    assert notify_owners(_later()) == {owner.id: {"email": 2}}
    assert len(inbox.messages) == 1


def test_questions_and_failures_read_plainly(inbox, owner, goal, flow):
    _immediate(owner)
    asked = _job(goal, "Translate the landing page")
    note(asked, "teammate.question", actor="person:7", person_name="Bea",
         text="Formal or informal German?")  # fmt: skip
    failed = _job(goal, "Pitch 12 sites")
    note(failed, "dispatch.fail", actor="adapter:sandbox", reason="402 insufficient funds")
    stuck = _job(goal, "Outline")
    note(stuck, "inbound_quarantined", actor="adapter:sandbox", error="no such slot")
    refused = _job(goal, "Edit")
    note(refused, "review_push_failed", actor="adapter:sandbox", decision="accept",
         reason="already paid")  # fmt: skip
    note(refused, "job_created")  # not something to tell
    db.session.commit()

    notify_owners(_later())

    [message] = inbox.messages
    assert message["Subject"] == "Dispatcher: 1 question, 3 failures"
    text = _text(message)
    assert "Translate the landing page: Bea asks: Formal or informal German?" in text
    assert "Pitch 12 sites: could not be sent (402 insufficient funds)" in text
    assert "Outline: an update from the platform could not be applied (no such slot)" in text
    assert "Edit: the platform refused your accept (already paid)" in text
    assert f"http://dispatcher.test/jobs/{asked.id}" in text
    assert "job_created" not in text
    assert text.index("QUESTIONS") < text.index("NEEDS YOUR ATTENTION")


def test_each_owner_hears_only_about_their_own(inbox, owner, goal, flow):
    bob = make_owner("bob@example.com")
    _immediate(owner)
    _immediate(bob)
    bobs_goal = tree.create_goal(bob.id, title="Bob's goal", budget_cents=10_000)
    _deliver(flow, goal, "Ann's post")
    _deliver(flow, bobs_goal, "Bob's post")

    notify_owners(_later())

    assert "Ann's post" in _text(inbox.to("ann@example.com")[0])
    assert "Bob's post" not in _text(inbox.to("ann@example.com")[0])
    assert "Bob's post" in _text(inbox.to("bob@example.com")[0])


def test_two_runs_at_once_send_each_notification_once(app, smtp_port, owner, goal, flow):
    """The runs overlap (checked: each starts before the other ends) on a slow SMTP server."""
    _immediate(owner)
    for n in range(5):
        _deliver(flow, goal, f"Post {n}")
    now = _later()
    barrier = threading.Barrier(2)
    spans: list[tuple[float, float]] = []
    results: list[dict] = []
    errors: list[BaseException] = []

    def run():
        with app.app_context():
            try:
                barrier.wait(5)
                start = time.monotonic()
                results.append(notify_owners(now))
                spans.append((start, time.monotonic()))
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)
            finally:
                db.session.remove()

    with smtp_server(smtp_port, Inbox(delay=0.5)) as slow:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    assert errors == []
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # they did run at the same time
    assert sorted(results, key=len) == [{}, {owner.id: {"email": 5}}]
    assert len(slow.messages) == 1
    assert _claims() == 5


def test_digest_mode_puts_them_in_the_digest_instead(inbox, owner, goal, flow):
    assert prefs_of(owner.id).email == EmailMode.DIGEST  # the default
    now = utcnow()
    owner.digest_hour = now.hour  # UTC, the owner's zone
    db.session.commit()
    _deliver(flow, goal, "Guest post for the digest")

    assert notify_owners(_later()) == {}
    assert inbox.messages == []

    assert send_due_digests(now) == [owner.id]
    [message] = inbox.messages
    assert "1 new delivery" in message["Subject"]
    text = _text(message)
    assert "NEW DELIVERIES TO REVIEW (1)" in text
    assert "Guest post for the digest: delivered, waiting for your review" in text

    _immediate(owner)  # switching to "at once" does not send it a second time
    assert notify_owners(_later()) == {}
    assert len(inbox.messages) == 1


def test_a_digest_that_fails_gives_its_notices_back(app, smtp_port, owner, goal, flow):
    now = utcnow()
    owner.digest_hour = now.hour  # UTC, the owner's zone
    db.session.commit()
    _deliver(flow, goal, "Kept for the next digest")

    with pytest.raises(Exception, match="not sent"):
        send_due_digests(now)  # no SMTP server yet
    assert _claims() == 0

    with smtp_server(smtp_port) as inbox:
        send_due_digests(now)
    assert "Kept for the next digest" in _text(inbox.messages[0])


def test_mail_off_sends_nothing(inbox, owner, goal, flow):
    save_prefs(owner.id, EmailMode.OFF, None)
    now = utcnow()
    owner.digest_hour = now.hour  # UTC, the owner's zone
    db.session.commit()
    _deliver(flow, goal, "Quiet")

    assert notify_owners(_later()) == {}
    send_due_digests(now)
    text = _text(inbox.messages[0])
    assert "* Quiet (sandbox)" in text  # the digest's own review list still has it
    assert "NEW DELIVERIES TO REVIEW" not in text
    assert "Quiet: delivered" not in text


def test_smtp_down_raises_and_the_next_run_sends(app, smtp_port, owner, goal, flow):
    _immediate(owner)
    _deliver(flow, goal, "Retry me")

    with pytest.raises(NotifyError, match=f"owner {owner.id}"):
        notify_owners(_later())
    assert _claims() == 0  # the claim was withdrawn

    with smtp_server(smtp_port) as inbox:
        assert notify_owners(_later()) == {owner.id: {"email": 1}}
    assert "Retry me" in _text(inbox.messages[0])


def test_slack_gets_one_message_per_batch_once(inbox, slack, owner, goal, flow):
    save_prefs(owner.id, EmailMode.DIGEST, slack.url)
    db.session.commit()
    for n in range(3):
        _deliver(flow, goal, f"Post <{n}>")

    assert notify_owners(_later()) == {owner.id: {"slack": 3}}
    assert notify_owners(_later(2)) == {}

    [posted] = slack.wait_for(1)
    assert posted.method == "POST"
    assert posted.headers["content-type"] == "application/json"
    text = json.loads(posted.body)["text"]
    assert text.startswith("*Dispatcher: 3 new deliveries*")
    assert "Post &lt;0&gt;: delivered, waiting for your review" in text  # Slack's escaping
    assert "<http://dispatcher.test/review|" in text
    assert inbox.messages == []  # email waits for the digest


def test_two_runs_at_once_post_to_slack_once(app, slack, owner, goal, flow):
    save_prefs(owner.id, EmailMode.OFF, slack.url)
    db.session.commit()
    _deliver(flow, goal, "Once")
    now = _later()
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def run():
        with app.app_context():
            barrier.wait(5)
            results.append(notify_owners(now))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(results, key=len) == [{}, {owner.id: {"slack": 1}}]
    time.sleep(0.2)
    assert len(slack.requests) == 1


def test_slack_refusing_is_retried_next_run(inbox, slack, owner, goal, flow):
    save_prefs(owner.id, EmailMode.OFF, slack.url)
    db.session.commit()
    slack.statuses = [500]
    _deliver(flow, goal, "Again")

    with pytest.raises(NotifyError, match="answered 500"):
        notify_owners(_later())
    assert _claims("slack") == 0
    assert notify_owners(_later()) == {owner.id: {"slack": 1}}
    assert len(slack.wait_for(2)) == 2


def test_the_task_runs_on_the_slow_queue(inbox, owner, goal, flow, run_jobs):
    from dispatcher.periodic import periodic_jobs
    from dispatcher.queues import SLOW, get_queue

    assert [(j.interval, j.queue) for j in periodic_jobs() if j.func is notify_owners] == [
        (30, SLOW)
    ]
    _immediate(owner)
    _deliver(flow, goal, "Through the worker")
    get_queue(SLOW).enqueue(notify_owners, _later())
    run_jobs()

    assert "Through the worker" in _text(inbox.messages[0])


def test_old_events_are_not_sent_after_the_lookback(inbox, owner, goal, flow):
    _immediate(owner)
    _deliver(flow, goal, "Long ago")

    assert notify_owners(_later(60 * 24 * 3)) == {}
    assert inbox.messages == []


def test_settings_page_saves_the_choice_and_seals_the_slack_url(client, login, owner):
    login(owner)
    page = client.get("/settings/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<input checked id="email-0" name="email" type="radio" value="digest">' in html
    assert "You have no digest hour yet" in html

    url = "https://hooks.slack.com/services/T000/B000/secretpart"
    saved = client.post("/settings/notifications", data={"email": "immediate", "slack_url": url})
    assert saved.status_code == 303
    assert prefs_of(owner.id) == prefs_of(owner.id).__class__(EmailMode.IMMEDIATE, url)
    row = db.session.get(NotificationSettings, owner.id)
    assert "secretpart" not in row.slack_url_sealed
    again = client.get("/settings/notifications").get_data(as_text=True)
    assert "secretpart" not in again
    assert "a webhook URL is saved" in again

    kept = client.post("/settings/notifications", data={"email": "digest", "slack_url": ""})
    assert kept.status_code == 303
    assert prefs_of(owner.id).slack_url == url
    client.post("/settings/notifications", data={"email": "digest", "remove_slack": "y"})
    assert prefs_of(owner.id).slack_url == ""


@pytest.mark.parametrize(
    "data, error",
    [
        ({"email": "sometimes"}, "Not a valid choice"),
        ({"email": "digest", "slack_url": "ftp://hooks.example/x"}, "starts with https://"),
        ({"email": "digest", "slack_url": "javascript:alert(1)"}, "starts with https://"),
        # an address inside the operator's network (outbound URL safety)
        ({"email": "digest", "slack_url": "http://10.0.0.5/hooks/x"}, "private"),
        ({"email": "digest", "slack_url": "http://169.254.169.254/latest"}, "169.254.169.254"),
    ],
)
def test_settings_page_refuses_bad_input_with_a_form_error(client, login, owner, data, error):
    login(owner)
    answer = client.post("/settings/notifications", data=data)
    assert answer.status_code == 400
    assert error in answer.get_data(as_text=True)
    assert prefs_of(owner.id).email == EmailMode.DIGEST


def test_a_dispatch_failing_through_its_machine_is_told(inbox, owner, goal, flow):
    """The kind the dispatch machine records for a failure is one the notifier listens to."""
    from dispatcher import lifecycle
    from dispatcher.dispatch import service

    _immediate(owner)
    job = _job(goal, "Refused order")
    dispatch = service.dispatch_job(job)
    lifecycle.DISPATCH.move(dispatch, "fail", job=job, actor="adapter:sandbox",
                            data={"reason": "403 account suspended"})  # fmt: skip
    db.session.commit()

    notify_owners(_later())

    assert "Refused order: could not be sent (403 account suspended)" in _text(inbox.messages[0])
