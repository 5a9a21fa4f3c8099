"""Scorecards from work given through the real paths; the figures are worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event as sa_event

from dispatcher.dispatch import review
from dispatcher.extensions import db
from dispatcher.models import Assignment
from dispatcher.people.pay import record_payment
from dispatcher.people.scorecard import scorecard, scorecards
from dispatcher.planning import tree

from .conftest import page
from .helpers import given, paid_at_platform, placed_at, submit


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def history(goal, person):
    """Sam: three jobs. A (due Jan 1): placed Jan 1 10:00, first delivery 16:00 (on time),
    a revision, then accepted with 4 stars and paid by the platform (10.00). B (due Jan 2):
    placed Jan 2 10:00, delivered Jan 3 10:00 (late), accepted first time with 5 stars, and a
    2.50 bonus recorded. C: out, nothing back. Kim: one job, delivered, rejected."""
    sam, kim = person("Sam Writer"), person("Kim Coder")
    a = given(goal, sam, "A", due_date=date(2026, 1, 1))
    placed_at(a, at(1, 10))
    first = submit(a, "a1", at(1, 16))
    review.request_revision(first, feedback="Add a conclusion")
    second = submit(a, "a2", at(1, 20))
    review.accept(second, rating=4)
    paid_at_platform(second)

    b = given(goal, sam, "B", due_date=date(2026, 1, 2))
    placed_at(b, at(2, 10))
    only = submit(b, "b1", at(3, 10))
    review.accept(only, rating=5)
    place = db.session.get(Assignment, only.assignment_id)
    record_payment(place, 250, "owner", paid_before=0)

    given(goal, sam, "C")

    d = given(goal, kim, "D", price=500)
    placed_at(d, at(4, 9))
    review.reject(submit(d, "d1", at(4, 10)), reason="Off topic")
    return sam, kim


def test_sams_scorecard(history):
    sam, _ = history
    card = scorecard(sam)
    assert card.jobs_given == 3
    assert card.delivered == 2
    assert card.on_time_rate == 0.5  # A on time, B a day late
    assert card.first_pass_rate == 0.5  # A's first submission got a revision, B's was accepted
    assert card.revisions_per_job == 0.5  # one revision over two delivered jobs
    assert card.average_turnaround == timedelta(hours=15)  # (6 h + 24 h) / 2
    assert card.average_rating == 4.5
    assert card.paid_cents == 1_000 + 250  # A paid by the platform, B's bonus (B still paying)


def test_kims_scorecard_and_nobody_elses_work_counts(history):
    _, kim = history
    card = scorecard(kim)
    assert (card.jobs_given, card.delivered, card.first_pass_rate) == (1, 1, 0.0)
    assert (card.revisions_per_job, card.average_rating, card.paid_cents) == (0.0, None, 0)
    assert card.on_time_rate is None  # no due date
    assert card.average_turnaround == timedelta(hours=1)


def test_the_directory_costs_the_same_queries_for_two_people_or_ten(history, ann, person):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    few = [p.id for p in history]
    many = few + [person(f"Extra {n}").id for n in range(8)]
    owner = ann.id
    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        scorecards(owner, few)
        small = len(statements)
        statements.clear()
        cards = scorecards(owner, many)
        large = len(statements)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert small == large == 3, statements
    assert cards[many[-1]].jobs_given == 0


def test_the_pages_show_the_figures_and_the_persons_name(client, history):
    sam, _ = history
    html = page(client.get("/people"))
    row = html[html.index(f'id="person-{sam.id}"') :]
    row = row[: row.index("</tr>")]
    for figure, shown in [
        ("jobs", "3"), ("on-time", "50%"), ("first-pass", "50%"), ("revisions", "0.5"),
        ("turnaround", "15.0 h"), ("rating", "4.5 ★"), ("paid", "12.50"),
    ]:  # fmt: skip
        assert f'data-figure="{figure}">{shown}' in row, (figure, row)
    person_page = page(client.get(f"/people/{sam.id}"))
    assert "Scorecard" in person_page and 'data-figure="paid">12.50' in person_page

    place = db.session.scalars(
        db.select(Assignment).where(Assignment.person_id == sam.id).order_by(Assignment.id)
    ).first()
    job_page = page(client.get(f"/jobs/{place.job_id}"))
    assert 'id="job-person">Sam Writer</a>' in job_page
    assert 'class="person-name">Sam Writer</a>' in job_page


def test_the_goals_results_show_its_people_with_this_goals_figures(client, ann, goal, history):
    sam, kim = history
    other = tree.create_goal(ann.id, title="Other goal", budget_cents=5_000)
    elsewhere = given(other, sam, "Elsewhere")
    submit(elsewhere, "x1")
    assert scorecard(sam).jobs_given == 4  # everywhere

    html = page(client.get(f"/goals/{goal.id}/results"))
    row = html[html.index(f'id="goal-person-{sam.id}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-figure="jobs">3<' in row and 'data-figure="paid">12.50' in row
    assert f'id="goal-person-{kim.id}"' in html
    rollup = html[html.index('id="rollup-') :]
    assert "· Sam Writer</span>" in rollup and "· Kim Coder</span>" in rollup
    other_page = page(client.get(f"/goals/{other.id}/results"))
    assert f'id="goal-person-{kim.id}"' not in other_page
    assert 'data-figure="jobs">1<' in other_page
