"""The daily digest, sent to a real SMTP server (aiosmtpd) on a loopback port."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from fakes.smtp import smtp_server
from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.mail import MailError, compose_digest, digest_sent, send_due_digests
from dispatcher.models import Event, Owner
from dispatcher.planning import tree
from dispatcher.today import local_today

from .conftest import make_owner

# 07:00 in New York (EST, UTC-5) on a day in January.
SEVEN_IN_NEW_YORK = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def app_config(app_config, smtp_port):
    return {**app_config, "smtp_port": smtp_port, "public_base_url": "http://dispatcher.test"}


def _body(message, subtype: str) -> str:
    return message.get_body(preferencelist=(subtype,)).get_content()


@pytest.fixture
def ny_owner(app):
    return make_owner("ann@example.com", timezone="America/New_York", digest_hour=7)


@pytest.fixture
def ny_day(ny_owner):
    return local_today(ny_owner, SEVEN_IN_NEW_YORK)


def _fill(owner, day):
    goal = tree.create_goal(owner.id, title="52 guest posts")
    tree.add_job(goal, title="Pitch 12 sites", mode="keep", planned_for=day, estimate_minutes=45)
    tree.add_job(goal, title="Outline <the> post", mode="keep", due_date=day - timedelta(days=1))
    family = tree.create_goal(owner.id, title="Family", personal=True)
    tree.add_job(family, title="Teach the kids fractions", mode="keep", planned_for=day)
    tree.add_job(goal, title="Next week's job", mode="keep", planned_for=day + timedelta(days=7))


def test_compose_has_the_same_lists_as_today(ny_owner, ny_day):
    _fill(ny_owner, ny_day)

    subject, text, html = compose_digest(ny_owner, ny_day)

    assert subject == "Today, Wed 15 Jan: 2 jobs today, 1 overdue"
    assert "[ ] Pitch 12 sites (52 guest posts, 45 min)" in text
    assert "[ ] Teach the kids fractions (Family, personal)" in text
    assert "[ ] Outline <the> post (due 2025-01-14; 52 guest posts)" in text
    assert "Next week" not in text
    assert "Nothing waiting for you." in text
    assert "http://dispatcher.test/today" in text
    assert "Outline &lt;the&gt; post" in html  # escaped in HTML
    assert 'href="http://dispatcher.test/today"' in html


def test_sent_once_at_the_owners_hour(inbox, ny_owner, ny_day):
    _fill(ny_owner, ny_day)

    assert send_due_digests(SEVEN_IN_NEW_YORK) == [ny_owner.id]
    assert send_due_digests(SEVEN_IN_NEW_YORK + timedelta(minutes=10)) == []

    assert len(inbox.messages) == 1
    rcpt, message = inbox.envelopes[0]
    assert rcpt == ["ann@example.com"]
    assert message["Subject"].startswith("Today, Wed 15 Jan")
    assert message["From"] == "dispatcher@localhost"
    assert "Pitch 12 sites" in _body(message, "plain")
    assert "Pitch 12 sites" in _body(message, "html")
    events = db.session.scalars(select(Event).where(Event.kind == "digest_sent")).all()
    assert [(e.owner_id, e.data) for e in events] == [(ny_owner.id, {"date": "2025-01-15"})]


def test_only_owners_whose_hour_it_is(inbox, ny_owner):
    make_owner("utc7@example.com", digest_hour=7)  # 12:00 UTC is not 7 in UTC
    make_owner("noon@example.com", digest_hour=12)
    make_owner("off@example.com", digest_hour=None)
    make_owner("tokyo@example.com", timezone="Asia/Tokyo", digest_hour=21)  # 21:00 JST

    send_due_digests(SEVEN_IN_NEW_YORK)

    assert sorted(r[0] for r, _ in inbox.envelopes) == [
        "ann@example.com", "noon@example.com", "tokyo@example.com",
    ]  # fmt: skip


def test_next_day_sends_again(inbox, ny_owner):
    send_due_digests(SEVEN_IN_NEW_YORK)
    send_due_digests(SEVEN_IN_NEW_YORK + timedelta(days=1))
    assert len(inbox.messages) == 2
    assert digest_sent(ny_owner.id, date(2025, 1, 16))


def test_overlapping_runs_send_once(inbox, app, ny_owner):
    """Several schedulers at once: the row lock before the claim lets one of them send."""
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                results.append(send_due_digests(SEVEN_IN_NEW_YORK))
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == []
    assert sorted(results) == [[], [], [], [ny_owner.id]]
    assert len(inbox.messages) == 1


def test_smtp_down_raises_and_the_next_run_retries(app, smtp_port, ny_owner):
    with pytest.raises(MailError, match=f"owner {ny_owner.id}"):
        send_due_digests(SEVEN_IN_NEW_YORK)
    assert not digest_sent(ny_owner.id, date(2025, 1, 15))  # the claim was withdrawn

    with smtp_server(smtp_port) as handler:
        assert send_due_digests(SEVEN_IN_NEW_YORK + timedelta(minutes=10)) == [ny_owner.id]
    assert len(handler.messages) == 1


def test_the_periodic_task_runs_on_the_worker(inbox, app, run_jobs):
    from dispatcher.periodic import periodic_jobs
    from dispatcher.queues import MAINTENANCE, get_queue
    from dispatcher.today import local_now
    from dispatcher.today_tasks import send_digests

    assert any(job.func is send_digests for job in periodic_jobs())
    owner = make_owner("now@example.com", timezone="Europe/Paris")
    owner.digest_hour = local_now(owner).hour
    db.session.commit()
    if local_now(owner).minute == 59 and local_now(owner).second > 50:
        pytest.skip("too close to the hour boundary to be sure which hour the worker sees")

    get_queue(MAINTENANCE).enqueue(send_digests)
    get_queue(MAINTENANCE).enqueue(send_digests)
    run_jobs()

    assert [r for r, _ in inbox.envelopes] == [["now@example.com"]]
    db.session.expire_all()
    assert db.session.get(Owner, owner.id).digest_hour == owner.digest_hour
