"""The numbers behind the results page: metric series, rollups, burn-up, busy-work check."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from dispatcher import results
from dispatcher.extensions import db
from dispatcher.models import Event, Goal, MetricValue, MicroJob
from dispatcher.planning import tree

UTC_ZONE = ZoneInfo("UTC")


def _start(goal, day: date) -> None:
    """Pretend the goal was created on `day` (the series and burn-up start there)."""
    db.session.execute(
        update(Goal)
        .where(Goal.id == goal.id)
        .values(created_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC))
    )
    db.session.commit()
    db.session.refresh(goal)


def test_log_metric_records_a_reading_and_an_event(goal):
    results.log_metric(
        goal, on=date(2025, 3, 1), value=3100, note_text=" after the HARO pitch ",
        today=date(2025, 3, 2),
    )  # fmt: skip
    reading = db.session.scalars(select(MetricValue)).one()
    assert (reading.on, reading.value, reading.note) == (
        date(2025, 3, 1),
        3100.0,
        "after the HARO pitch",
    )
    event = db.session.scalars(select(Event).where(Event.kind == "metric_logged")).one()
    assert event.goal_id == goal.id and event.data == {"on": "2025-03-01", "value": 3100.0}


@pytest.mark.parametrize(
    ("on", "value", "note", "message"),
    [
        (date(2025, 3, 3), 1.0, "", "in the future"),
        (date(2025, 3, 1), math.nan, "", "finite number"),
        (date(2025, 3, 1), math.inf, "", "finite number"),
        (date(2025, 3, 1), 1.0, "x" * 501, "under 500"),
    ],
)
def test_log_metric_refuses_bad_readings(goal, on, value, note, message):
    with pytest.raises(ValueError, match=message):
        results.log_metric(goal, on=on, value=value, note_text=note, today=date(2025, 3, 2))
    db.session.rollback()
    assert db.session.query(MetricValue).count() == 0


def test_series_measures_against_target_and_pace(goal):
    _start(goal, date(2025, 1, 1))
    tree.update_goal(goal, deadline=date(2025, 5, 1))  # 120 days: 2,000 -> 10,000
    for on, value in [(date(2025, 2, 1), 3000), (date(2025, 1, 15), 2500)]:
        results.log_metric(goal, on=on, value=value, today=date(2025, 3, 1))

    series = results.metric_series(goal, UTC_ZONE)

    assert [p.on for p in series.points] == [date(2025, 1, 15), date(2025, 2, 1)]
    assert series.latest.value == 3000
    assert series.percent_of_target == round(100 * 1000 / 8000)
    assert series.expected_on(date(2025, 1, 1)) == 2000
    assert series.expected_on(date(2025, 5, 1)) == 10_000
    assert series.expected_on(date(2025, 3, 2)) == pytest.approx(2000 + 8000 * 60 / 120)
    assert series.expected_on(date(2026, 1, 1)) == 10_000  # no further than the target
    assert series.on_track is False  # 3,000 on Feb 1 is below the line (~4,067)

    results.log_metric(goal, on=date(2025, 2, 2), value=4500, today=date(2025, 3, 1))
    assert results.metric_series(goal, UTC_ZONE).on_track is True


def test_series_without_target_or_deadline_has_no_pace(owner):
    goal = tree.create_goal(owner.id, title="vague")
    results.log_metric(goal, on=date(2025, 1, 2), value=5, today=date(2025, 1, 2))
    series = results.metric_series(goal, UTC_ZONE)
    assert series.percent_of_target is None
    assert series.expected_on(date(2025, 1, 2)) is None
    assert series.on_track is None


def test_rollup_per_top_level_node_by_count_and_estimate(goal):
    pitch = tree.add_job(goal, title="Pitching", budget_cents=3000)
    a, b, c = tree.split_job(pitch, ["email 1", "email 2", "email 3"])
    for job, minutes in ((a, 10), (b, 10), (c, 40)):
        tree.update_job(job, estimate_minutes=minutes, mode="keep")
    write = tree.add_job(goal, title="Write", mode="keep", estimate_minutes=120)
    dropped = tree.add_job(goal, title="Dropped", mode="keep", estimate_minutes=999)
    tree.act(a, "complete")
    tree.act(b, "complete")
    tree.act(dropped, "cancel")

    rollup = results.rollup(goal)

    by_title = {n.title: n for n in rollup.nodes}
    assert (by_title["Pitching"].progress.done, by_title["Pitching"].progress.total) == (2, 3)
    assert by_title["Pitching"].progress.percent == 67
    assert by_title["Pitching"].progress.percent_by_estimate == 33  # 20 of 60 minutes
    assert by_title["Write"].progress.percent == 0
    assert by_title["Dropped"].progress.total == 0  # cancelled work does not count
    assert (rollup.progress.done, rollup.progress.total) == (2, 4)
    assert (rollup.progress.minutes_done, rollup.progress.minutes_total) == (20, 180)
    assert [e.title for e in rollup.envelopes] == ["Pitching"]
    assert rollup.envelopes[0].available_cents == 3000
    assert write.id in {n.job_id for n in rollup.nodes}


def test_rollup_money_matches_the_envelope_columns(goal, flow):
    section = tree.add_job(goal, title="Outreach", budget_cents=5000)
    inner = tree.add_job(goal, title="Guest posts", parent=section, budget_cents=3000)
    first = flow.delegated(goal, "post 1", price=1200, parent=inner)
    second = flow.delegated(goal, "post 2", price=800, parent=inner)
    flow.dispatch(second)
    flow.accept(flow.deliver(flow.dispatch(first)), payout=1000)

    rollup = results.rollup(goal)

    assert (rollup.reserved_cents, rollup.spent_cents, rollup.available_cents) == (800, 1000, 8200)
    [top] = rollup.nodes
    assert (top.reserved_cents, top.spent_cents, top.available_cents) == (800, 1000, 3200)
    # the leaves' figures summed up the tree agree with what the envelope checks read
    assert (top.progress.reserved_cents, top.progress.spent_cents) == (800, 1000)
    envelopes = {e.title: e for e in rollup.envelopes}
    assert envelopes["Guest posts"].available_cents == 3000 - 800 - 1000
    assert envelopes["Guest posts"].depth == 1


def test_burnup_counts_finished_jobs_against_scope(owner, goal):
    _start(goal, date(2025, 3, 1))
    jobs = [tree.add_job(goal, title=f"j{n}", mode="keep") for n in range(4)]
    tree.act(jobs[3], "cancel")

    def at(job, created: date, finished: date | None = None):
        values = {"created_at": datetime(created.year, created.month, created.day, 12, tzinfo=UTC)}
        if finished:
            tree.act(job, "complete")
            values["finished_at"] = datetime(
                finished.year, finished.month, finished.day, 23, 30, tzinfo=UTC
            )
        db.session.execute(update(MicroJob).where(MicroJob.id == job.id).values(**values))
        db.session.commit()

    at(jobs[0], date(2025, 3, 1), date(2025, 3, 2))
    at(jobs[1], date(2025, 3, 1), date(2025, 3, 4))
    at(jobs[2], date(2025, 3, 3))

    burn = results.burnup(goal, date(2025, 3, 5), UTC_ZONE)
    assert burn.days == [date(2025, 2, 28)] + [date(2025, 3, d) for d in range(1, 6)]
    assert burn.done == [0, 0, 1, 1, 2, 2]
    assert burn.scope == [0, 2, 2, 3, 3, 3]

    # 23:30 UTC is already the next day in Berlin
    berlin = results.burnup(goal, date(2025, 3, 5), ZoneInfo("Europe/Berlin"))
    assert berlin.done == [0, 0, 0, 1, 1, 2]


def test_burnup_thins_out_long_spans(goal):
    _start(goal, date(2024, 1, 1))
    burn = results.burnup(goal, date(2025, 1, 1), UTC_ZONE, max_points=60)
    assert len(burn.days) <= 61
    assert burn.days[0] == date(2023, 12, 31) and burn.days[-1] == date(2025, 1, 1)
    assert burn.days == sorted(burn.days)


def test_busy_work_flags_jobs_without_criteria_and_unmeasurable_goals(owner, goal):
    ok = tree.add_job(goal, title="Pitch", acceptance_criteria=["12 sites emailed"])
    blank = tree.add_job(goal, title="Tweak the logo", acceptance_criteria=["  "])
    none = tree.add_job(goal, title="Answer emails")
    parent = tree.add_job(goal, title="Post")  # a parent is judged by its leaves
    tree.split_job(parent, ["Outline"])
    gone = tree.add_job(goal, title="Cancelled")
    tree.act(gone, "cancel")

    busy = results.busy_work(goal)

    assert busy.goal_problems == []
    flagged = {j.title for j in busy.jobs_without_criteria}
    assert flagged == {"Tweak the logo", "Answer emails", "Outline"}
    assert ok.id not in {j.id for j in busy.jobs_without_criteria}
    assert blank.id in {j.id for j in busy.jobs_without_criteria}
    assert none.id in {j.id for j in busy.jobs_without_criteria}

    vague = tree.create_goal(owner.id, title="Be more visible")
    half = tree.create_goal(owner.id, title="More visits", metric_name="visits")
    assert len(results.goal_problems(vague)) == 2
    assert [p.split(":")[0] for p in results.goal_problems(half)] == ["no target value"]
    assert [g.title for g, _ in results.unmeasurable_goals(owner.id)] == [
        "Be more visible", "More visits",
    ]  # fmt: skip
    assert results.busy_work(goal).clean is False
    tree.update_job(blank, acceptance_criteria=["logo approved"])
    tree.update_job(none, acceptance_criteria=["inbox zero"])
    outline = tree.leaves_of(goal)
    for job in outline:
        if not results.has_criteria(job):
            tree.update_job(job, acceptance_criteria=["done"])
    assert results.busy_work(goal).clean is True


def test_unmeasurable_goals_are_scoped_to_the_owner(owner, app):
    from .conftest import make_owner

    other = make_owner("bob@example.com")
    tree.create_goal(other.id, title="Bob's vague goal")
    assert results.unmeasurable_goals(owner.id) == []


def test_days_are_counted_in_the_owners_zone(goal):
    # created 23:30 UTC on 1 March: already 2 March in Tokyo
    db.session.execute(
        update(Goal)
        .where(Goal.id == goal.id)
        .values(created_at=datetime(2025, 3, 1, 23, 30, tzinfo=UTC))
    )
    db.session.commit()
    db.session.refresh(goal)
    assert results.metric_series(goal, ZoneInfo("Asia/Tokyo")).start == date(2025, 3, 2)
    tokyo = results.burnup(goal, date(2025, 3, 3), ZoneInfo("Asia/Tokyo"))
    assert tokyo.days[:2] == [date(2025, 3, 1), date(2025, 3, 2)]  # the zero day, then the start
    assert results.burnup(goal, date(2025, 3, 3), UTC_ZONE).days[1] == date(2025, 3, 1)


def test_readings_from_before_the_goal_move_its_start_back(goal):
    _start(goal, date(2025, 3, 1))
    tree.update_goal(goal, deadline=date(2025, 6, 1))
    results.log_metric(goal, on=date(2025, 2, 1), value=1800, today=date(2025, 3, 1))
    series = results.metric_series(goal, UTC_ZONE)
    assert series.start == date(2025, 2, 1)
    assert series.expected_on(date(2025, 2, 1)) == 2000  # the pace line starts at the baseline
