"""Today: which jobs land on which list, in the owner's time zone, and the actions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from dispatcher import today as today_mod
from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Event
from dispatcher.planning import tree

from .conftest import make_owner


def _titles(jobs):
    return [j.title for j in jobs]


def test_today_follows_the_owners_time_zone(app):
    auckland = make_owner("kiri@example.com", timezone="Pacific/Auckland")
    london = make_owner("liz@example.com", timezone="Europe/London")
    instant = datetime(2025, 3, 12, 20, 30, tzinfo=UTC)  # already the 13th in Auckland
    assert today_mod.local_today(auckland, instant) == date(2025, 3, 13)
    assert today_mod.local_today(london, instant) == date(2025, 3, 12)


def test_an_unknown_zone_falls_back_to_utc(app):
    owner = make_owner("x@example.com", timezone="Mars/Olympus_Mons")
    instant = datetime(2025, 3, 12, 23, 30, tzinfo=UTC)
    assert today_mod.local_today(owner, instant) == date(2025, 3, 12)


def test_lists_sort_my_jobs_into_today_overdue_and_later(owner, goal, today):
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    add = tree.add_job
    add(goal, title="planned today", mode="keep", planned_for=today)
    add(goal, title="due today", due_date=today)  # undecided jobs are mine until delegated
    add(goal, title="planned earlier, due today", mode="keep", planned_for=yesterday,
        due_date=today)  # fmt: skip
    add(goal, title="due yesterday", mode="keep", due_date=yesterday)
    add(goal, title="planned yesterday", mode="keep", planned_for=yesterday)
    add(goal, title="tomorrow", mode="keep", planned_for=tomorrow)
    add(goal, title="someday", mode="keep")
    add(goal, title="delegated today", mode="delegate", channel="sandbox", planned_for=today)
    finished = add(goal, title="finished", mode="keep", planned_for=today)
    tree.act(finished, "complete")

    view = today_mod.today_view(owner, today)

    assert sorted(_titles(view.planned)) == [
        "due today", "planned earlier, due today", "planned today",
    ]  # fmt: skip
    assert _titles(view.overdue) == ["due yesterday", "planned yesterday"]
    assert today_mod.overdue_reason(view.overdue[0], today) == f"due {yesterday.isoformat()}"
    assert "planned for" in today_mod.overdue_reason(view.overdue[1], today)


def test_only_leaves_are_listed_and_in_progress_comes_first(owner, goal, today):
    parent = tree.add_job(goal, title="Write the post", mode="keep", planned_for=today)
    outline, draft = tree.split_job(parent, ["Outline", "First 100 words"])
    tree.update_job(outline, planned_for=today)
    tree.update_job(draft, planned_for=today)
    tree.act(draft, "start")

    view = today_mod.today_view(owner, today)

    assert _titles(view.planned) == ["First 100 words", "Outline"]


def test_personal_goals_show_beside_work(owner, goal, today):
    family = tree.create_goal(owner.id, title="Family", personal=True)
    tree.add_job(family, title="Wrestle with the kids", mode="keep", planned_for=today)
    tree.add_job(goal, title="Pitch 12 sites", mode="keep", planned_for=today)

    view = today_mod.today_view(owner, today)

    assert sorted(_titles(view.planned)) == ["Pitch 12 sites", "Wrestle with the kids"]
    assert {j.goal.personal for j in view.planned} == {True, False}


def test_other_owners_jobs_never_show(owner, goal, today):
    other = make_owner("bob@example.com")
    theirs = tree.create_goal(other.id, title="Bob's goal")
    tree.add_job(theirs, title="Bob's job", mode="keep", planned_for=today)
    tree.add_job(goal, title="Ann's job", mode="keep", planned_for=today)

    assert _titles(today_mod.today_view(owner, today).planned) == ["Ann's job"]
    assert _titles(today_mod.today_view(other, today).planned) == ["Bob's job"]


def test_out_with_others_and_awaiting_review(owner, goal, today, flow):
    def delegated(title):
        return tree.add_job(
            goal, title=title, mode="delegate", channel="sandbox", price_cents=500,
            acceptance_criteria=["600+ words"],
        )  # fmt: skip

    out = delegated("Find 12 blogs")
    flow.dispatch(out)
    back = delegated("Write a draft")
    delivery = flow.deliver(flow.dispatch(back))
    delegated("Not sent yet")

    view = today_mod.today_view(owner, today)

    assert [(j.title, j.status) for j in view.out] == [("Find 12 blogs", Status.DISPATCHED)]
    assert [d.id for d in view.review] == [delivery.id]
    assert view.review[0].job.title == "Write a draft"


def test_check_off_completes_through_the_lifecycle(owner, goal):
    job = tree.add_job(goal, title="Edit the post", mode="keep", estimate_minutes=30)
    assert today_mod.check_off(job) == Status.DONE
    db.session.refresh(job)
    assert job.status == Status.DONE
    assert job.finished_at is not None
    event = db.session.scalars(
        select(Event).where(Event.job_id == job.id, Event.kind == "complete")
    ).one()
    assert (event.from_status, event.to_status) == ("draft", "done")

    day = today_mod.local_today(owner)
    assert _titles(today_mod.today_view(owner, day).done_today) == ["Edit the post"]


def test_check_off_refuses_delegated_parent_and_finished_jobs(owner, goal):
    delegated = tree.add_job(goal, title="x", mode="delegate", channel="sandbox")
    with pytest.raises(InvalidTransition, match="delegated"):
        today_mod.check_off(delegated)
    parent = tree.add_job(goal, title="parent", mode="keep")
    tree.split_job(parent, ["child"])
    with pytest.raises(InvalidTransition, match="smaller jobs"):
        today_mod.check_off(parent)
    done = tree.add_job(goal, title="done", mode="keep")
    today_mod.check_off(done)
    with pytest.raises(InvalidTransition, match="it is done"):
        today_mod.check_off(done)


def test_push_to_tomorrow_and_plan(owner, goal, today):
    job = tree.add_job(goal, title="Send follow-ups", mode="keep", planned_for=today)
    today_mod.push_to_tomorrow(job, today)
    assert job.planned_for == today + timedelta(days=1)
    assert today_mod.today_view(owner, today).planned == []
    assert _titles(today_mod.today_view(owner, job.planned_for).planned) == ["Send follow-ups"]

    today_mod.plan_for(job, None)
    assert job.planned_for is None
    kinds = db.session.scalars(select(Event.kind).where(Event.job_id == job.id)).all()
    assert kinds.count("job_updated") == 2


def test_plan_refuses_finished_jobs(owner, goal, today):
    job = tree.add_job(goal, title="Done already", mode="keep")
    today_mod.check_off(job)
    with pytest.raises(InvalidTransition, match="only open jobs"):
        today_mod.plan_for(job, today)
