"""Repeating micro-goals: period arithmetic, exactly-once instances (even when two schedulers
race), planned vs done per period, the RQ task, and the pages."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Cadence, CadenceRun, Event, MicroJob
from dispatcher.planning import cadence as cadences
from dispatcher.planning import tree
from dispatcher.planning.playbooks import from_definition
from dispatcher.planning.tasks import PERIODIC_JOBS, run_cadences

MONDAY = date(2026, 1, 5)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def small_playbook():
    return from_definition(
        {
            "name": "tiny",
            "title": "Tiny",
            "parameters": {"k": {"type": "integer", "default": 2}},
            "jobs": [{"title": "step {n} of {k}", "repeat": "k", "estimate_minutes": 5}],
        },
        "tiny",
    )


def weekly(goal, playbook, **kwargs) -> Cadence:
    options = {"title": "Guest post", "starts_on": MONDAY, "count": 52}
    options.update(kwargs)
    return cadences.create_cadence(goal, playbook, **options)


def instances(cadence_id: int) -> list[MicroJob]:
    runs = db.session.scalars(
        select(CadenceRun).where(CadenceRun.cadence_id == cadence_id).order_by(CadenceRun.period)
    ).all()
    return [db.session.get(MicroJob, r.job_id) for r in runs]


def test_period_arithmetic(goal, small_playbook):
    c = weekly(goal, small_playbook, every=2, count=None, until=date(2026, 3, 2))
    assert cadences.period_start(c, 0) == MONDAY
    assert cadences.period_start(c, 1) == date(2026, 1, 19)
    assert cadences.period_end(c, 0) == date(2026, 1, 18)
    assert cadences.total_periods(c) == 5  # Jan 5, 19, Feb 2, 16, Mar 2
    assert cadences.periods_started(c, date(2026, 1, 4)) == 0
    assert cadences.periods_started(c, MONDAY) == 1
    assert cadences.periods_started(c, date(2026, 1, 19)) == 2
    assert cadences.periods_started(c, date(2030, 1, 1)) == 5
    daily = weekly(goal, small_playbook, unit="day", count=3)
    assert cadences.total_periods(daily) == 3
    assert cadences.period_end(daily, 0) == MONDAY
    assert cadences.describe(c) == "every 2 weeks from 2026-01-05, until 2026-03-02"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": "  "}, "title: give the repeating goal a name"),
        ({"unit": "month"}, "unit: must be one of day, week"),
        ({"every": 0}, "every: must be between 1 and 365"),
        ({"count": 0}, "count: must be between 1 and 1000"),
        ({"until": date(2025, 12, 1)}, "until: must be on or after the start date"),
        ({"count": None, "unit": "day", "until": date(2030, 1, 1)}, "the limit is 1000"),
    ],
)
def test_create_cadence_refuses_bad_settings(goal, small_playbook, kwargs, message):
    with pytest.raises(ValueError, match=message):
        weekly(goal, small_playbook, **kwargs)
    assert db.session.scalar(select(func.count()).select_from(Cadence)) == 0


def test_builds_each_due_period_once(goal, small_playbook):
    c = weekly(goal, small_playbook)
    assert cadences.run_due_cadences(at(MONDAY - timedelta(days=1))) == 0
    assert cadences.run_due_cadences(at(MONDAY)) == 1
    assert cadences.run_due_cadences(at(MONDAY)) == 0  # again: nothing new
    assert cadences.run_due_cadences(at(MONDAY + timedelta(days=15))) == 2  # caught up
    assert cadences.run_due_cadences(at(MONDAY + timedelta(days=15))) == 0
    built = instances(c.id)
    assert [j.title for j in built] == [
        "Guest post 1 of 52 (05 Jan 2026)",
        "Guest post 2 of 52 (12 Jan 2026)",
        "Guest post 3 of 52 (19 Jan 2026)",
    ]
    first = built[0]
    assert first.parent_id is None
    assert first.due_date == date(2026, 1, 11)
    assert [(ch.title, ch.due_date) for ch in first.children] == [
        ("step 1 of 2", date(2026, 1, 11)),
        ("step 2 of 2", date(2026, 1, 11)),
    ]
    db.session.refresh(c)
    assert c.last_period == 2
    events = db.session.scalars(select(Event).where(Event.kind == "cadence_instance_created")).all()
    assert sorted(e.data["period"] for e in events) == [0, 1, 2]


def test_instances_go_under_the_parent_and_the_cadence_ends(goal, small_playbook):
    parent = tree.add_job(goal, title="Guest posts")
    c = weekly(goal, small_playbook, parent=parent, count=2, params={"k": 1})
    assert cadences.run_due_cadences(at(MONDAY)) == 1
    assert cadences.run_due_cadences(at(MONDAY + timedelta(days=60))) == 1
    built = instances(c.id)
    assert [j.parent_id for j in built] == [parent.id, parent.id]
    assert [len(j.children) for j in built] == [1, 1]
    db.session.refresh(c)
    assert c.active is False  # both periods built: nothing left to schedule
    assert cadences.run_due_cadences(at(MONDAY + timedelta(days=400))) == 0


def test_the_unique_run_decides_who_builds_a_period(goal, small_playbook):
    """A second builder of the same period (another worker that lost the race) leaves nothing."""
    c = weekly(goal, small_playbook)
    assert cadences._build_instance(c, 0, []) is not None
    jobs_before = db.session.scalar(select(func.count()).select_from(MicroJob))
    c = db.session.get(Cadence, c.id)
    assert cadences._build_instance(c, 0, []) is None
    assert db.session.scalar(select(func.count()).select_from(MicroJob)) == jobs_before
    assert db.session.scalar(select(func.count()).select_from(CadenceRun)) == 1


def test_two_schedulers_at_once_build_each_period_exactly_once(app, goal, small_playbook):
    c = weekly(goal, small_playbook)
    cadence_id = c.id
    assert cadences.run_due_cadences(at(MONDAY)) == 1  # the first run: period 0
    now = at(MONDAY + timedelta(weeks=11))  # eleven more periods are due
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        with app.app_context():
            try:
                barrier.wait()
                results.append(cadences.run_due_cadences(now, channels=[]))
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(results) == 11
    periods = db.session.scalars(
        select(CadenceRun.period).where(CadenceRun.cadence_id == cadence_id)
    ).all()
    assert sorted(periods) == list(range(12))
    containers = db.session.scalars(
        select(MicroJob).where(MicroJob.goal_id == goal.id, MicroJob.parent_id.is_(None))
    ).all()
    assert len(containers) == 12
    assert db.session.scalar(select(func.count()).select_from(MicroJob)) == 12 * 3


def test_periods_start_in_the_owners_time_zone(new_owner, small_playbook):
    kiwi = new_owner("kiri@example.nz", timezone="Pacific/Auckland")
    ann = new_owner("ann@example.co.uk", timezone="Europe/London")
    sunday_noon_utc = at(MONDAY - timedelta(days=1), hour=12)  # already Monday in Auckland
    for owner in (kiwi, ann):
        goal = tree.create_goal(owner.id, title="posts")
        weekly(goal, small_playbook)
    assert cadences.run_due_cadences(sunday_noon_utc) == 1
    built = db.session.scalars(select(Cadence).where(Cadence.last_period.is_not(None))).one()
    assert built.owner_id == kiwi.id


def test_a_deleted_parent_stops_the_cadence(goal, small_playbook):
    parent = tree.add_job(goal, title="Guest posts")
    c = weekly(goal, small_playbook, parent=parent)
    cadence_id = c.id
    tree.delete_job(parent)
    assert cadences.run_due_cadences(at(MONDAY)) == 0
    c = db.session.get(Cadence, cadence_id)
    assert c is None or c.active is False  # PostgreSQL cascades; SQLite: stopped with a reason


def test_report_shows_planned_vs_done_per_period(goal, small_playbook):
    c = weekly(goal, small_playbook, count=4)
    cadences.run_due_cadences(at(MONDAY))
    cadences.run_due_cadences(at(MONDAY + timedelta(days=8)))
    first, second = instances(c.id)
    for job in first.children:
        tree.act(job, "complete")
    tree.act(second.children[0], "complete")
    (report,) = cadences.cadence_report(goal, now=at(MONDAY + timedelta(days=8)))
    rows = [(r.index, r.planned, r.done, r.state) for r in report.rows]
    assert rows == [(0, 2, 2, "done"), (1, 2, 1, "open")]
    assert (report.started, report.total, report.periods_done) == (2, 4, 1)
    assert (report.planned, report.done) == (4, 3)
    assert report.next_start == date(2026, 1, 19)
    # a cancelled step is no longer planned; a period not yet built shows as upcoming
    tree.act(second.children[1], "cancel")
    (report,) = cadences.cadence_report(goal, now=at(MONDAY + timedelta(days=15)))
    assert [(r.planned, r.done, r.state) for r in report.rows] == [
        (2, 2, "done"),
        (1, 1, "done"),
        (0, 0, "upcoming"),
    ]


def test_periodic_job_is_listed_and_runs_through_rq(app, goal, small_playbook, run_jobs):
    from dispatcher.periodic import periodic_jobs
    from dispatcher.queues import MAINTENANCE, get_queue

    assert [(run_cadences, 600)] == PERIODIC_JOBS
    assert any(job.func is run_cadences for job in periodic_jobs())
    c = weekly(goal, small_playbook, starts_on=date.today() - timedelta(days=1))
    get_queue(MAINTENANCE).enqueue(run_cadences)
    get_queue(MAINTENANCE).enqueue(run_cadences)  # a second run builds nothing more
    assert run_jobs() == 2
    db.session.expire_all()
    assert len(instances(c.id)) == 1


# --- pages --------------------------------------------------------------------------------------


def test_repeat_a_playbook_from_the_apply_page(ann, goal):
    response = ann.post(
        f"/goals/{goal.id}/playbooks/guest_post/apply",
        data={
            "action": "repeat", "title": "Guest post", "every": "1", "unit": "week",
            "starts_on": date.today().isoformat(), "count": "52", "until": "",
            "p.pitches": "2", "p.blocks": "1", "p.followups": "0",
        },
    )  # fmt: skip
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/goals/{goal.id}/cadence")
    c = db.session.scalars(select(Cadence)).one()
    assert (c.count, c.params["pitches"], c.playbook) == (52, 2, "guest_post")
    assert len(instances(c.id)) == 1  # this week's is built at once
    page = ann.get(f"/goals/{goal.id}/cadence").get_data(as_text=True)
    assert "Guest post 1 of 52" in page
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "0 of 1 period(s) so far complete (52 in all); 0 of 8 jobs done." in text
    assert ann.post(f"/goals/{goal.id}/cadence/{c.id}/run").status_code == 302
    assert len(instances(c.id)) == 1
    assert ann.post(f"/goals/{goal.id}/cadence/{c.id}/stop").status_code == 302
    db.session.expire_all()
    assert db.session.get(Cadence, c.id).active is False
    assert ann.post(f"/goals/{goal.id}/cadence/{c.id}/explode").status_code == 404
    assert ann.post(f"/goals/{goal.id}/cadence/{c.id}/delete").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Cadence)) == 0
    assert db.session.scalar(select(func.count()).select_from(MicroJob)) > 0  # jobs stay


def test_repeat_form_errors_are_shown(ann, goal):
    response = ann.post(
        f"/goals/{goal.id}/playbooks/blog_post/apply",
        data={"action": "repeat", "title": "", "every": "0", "starts_on": "someday"},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "every: Must be greater than or equal to 1" in page
    assert "starts_on: Not a valid date." in page
    assert db.session.scalar(select(func.count()).select_from(Cadence)) == 0


def test_cadence_of_another_owner_is_not_found(login, other_owner, goal, small_playbook):
    c = weekly(goal, small_playbook)
    client = login(other_owner)
    assert client.get(f"/goals/{goal.id}/cadence").status_code == 404
    mine = tree.create_goal(other_owner.id, title="mine")
    assert client.post(f"/goals/{mine.id}/cadence/{c.id}/stop").status_code == 404
    assert db.session.get(Cadence, c.id).active is True


def test_instances_are_done_when_their_leaves_are(goal, small_playbook):
    c = weekly(goal, small_playbook, params={"k": 1})
    cadences.run_due_cadences(at(MONDAY))
    (first,) = instances(c.id)
    tree.act(first.children[0], "complete")
    node = next(n for n in tree.goal_tree(goal) if n.job.id == first.id)
    assert node.status == Status.DONE


def test_first_run_of_a_cadence_started_a_year_back_builds_only_the_current_period(
    goal, small_playbook
):
    c = weekly(goal, small_playbook, count=None)
    a_year_on = at(MONDAY + timedelta(weeks=52, days=2))  # period 52 (the 53rd) has begun
    assert cadences.run_due_cadences(a_year_on) == 1
    (built,) = instances(c.id)
    assert built.title == "Guest post 53 (04 Jan 2027)"
    assert cadences.run_due_cadences(a_year_on) == 0
    # later runs carry on from there, catching up only what they missed since
    assert cadences.run_due_cadences(at(MONDAY + timedelta(weeks=54))) == 2
    assert [j.title for j in instances(c.id)] == [
        "Guest post 53 (04 Jan 2027)",
        "Guest post 54 (11 Jan 2027)",
        "Guest post 55 (18 Jan 2027)",
    ]
    (report,) = cadences.cadence_report(goal, now=at(MONDAY + timedelta(weeks=54)))
    assert [r.state for r in report.rows[:52]] == ["skipped"] * 52
    assert [r.state for r in report.rows[52:]] == ["open"] * 3


def test_a_second_identical_cadence_is_refused(goal, small_playbook):
    weekly(goal, small_playbook)
    with pytest.raises(ValueError, match="already repeats"):
        weekly(goal, small_playbook)
    assert db.session.scalar(select(func.count()).select_from(Cadence)) == 1
    weekly(goal, small_playbook, title="Newsletter")  # another series is fine


@pytest.mark.parametrize("end", ["delete", "stop"])
def test_recreating_a_cadence_does_not_duplicate_its_periods(goal, small_playbook, end):
    first = weekly(goal, small_playbook)
    assert cadences.run_due_cadences(at(MONDAY)) == 1
    assert cadences.run_due_cadences(at(MONDAY + timedelta(days=7))) == 1
    if end == "delete":
        cadences.delete_cadence(first)
    else:
        cadences.stop_cadence(first)
    again = weekly(goal, small_playbook)
    assert cadences.run_due_cadences(at(MONDAY + timedelta(days=8))) == 0  # period 1 exists
    assert cadences.run_due_cadences(at(MONDAY + timedelta(days=14))) == 1  # period 2 is new
    containers = db.session.scalars(
        select(MicroJob.title)
        .where(MicroJob.goal_id == goal.id, MicroJob.parent_id.is_(None))
        .order_by(MicroJob.id)
    ).all()
    assert containers == [
        "Guest post 1 of 52 (05 Jan 2026)",
        "Guest post 2 of 52 (12 Jan 2026)",
        "Guest post 3 of 52 (19 Jan 2026)",
    ]
    assert [j.title for j in instances(again.id)] == containers[1:]
