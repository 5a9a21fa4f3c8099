"""Today and Results in a real browser: tick a job off, log a metric value and see it charted."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import MetricValue, MicroJob
from dispatcher.planning import tree
from dispatcher.results import log_metric
from dispatcher.today import local_today

pytestmark = pytest.mark.browser

#: Counts the pixels a canvas has drawn: a chart that failed to render leaves none.
DRAWN_PIXELS = """(id) => {
  const canvas = document.getElementById(id);
  const ctx = canvas.getContext('2d');
  const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) drawn++; }
  return drawn;
}"""


def test_tick_off_a_job_in_today(page, owner, log_in, shot):
    day = local_today(owner)
    goal = tree.create_goal(owner.id, title="52 guest posts", metric_name="posts", target=52)
    family = tree.create_goal(owner.id, title="Family", personal=True)
    pitch = tree.add_job(goal, title="Email 12 pitches", mode="keep", planned_for=day,
                         estimate_minutes=45)  # fmt: skip
    tree.add_job(goal, title="Outline the post", mode="keep", due_date=day - timedelta(days=1))
    tree.add_job(family, title="Wrestle with the kids", mode="keep", planned_for=day)
    log_in(page, owner)

    page.goto("/today")
    row = page.locator(f"#planned li#job-{pitch.id}")
    assert row.locator(".title").inner_text().startswith("Email 12 pitches")
    assert page.locator("#overdue").get_by_text("Outline the post").is_visible()
    assert page.locator("#planned .tag.personal").is_visible()
    shot(page, "before")

    with page.expect_navigation():
        row.get_by_role("button", name="Done").click()

    assert page.get_by_text("Done: Email 12 pitches").is_visible()
    assert page.locator(f"#planned li#job-{pitch.id}").count() == 0
    assert page.locator(f"#done li#job-{pitch.id}").is_visible()
    db.session.expire_all()
    assert db.session.get(MicroJob, pitch.id).status == Status.DONE
    assert page.offsite_requests == [] and page.js_errors == []
    shot(page, "after")


def test_log_a_metric_value_and_see_the_chart(page, owner, log_in, shot):
    today = local_today(owner)
    goal = tree.create_goal(
        owner.id, title="10k visits a month", metric_name="monthly visits", baseline=2000,
        target=10_000, deadline=today + timedelta(days=90), budget_cents=20_000,
    )  # fmt: skip
    for days_ago, value in ((40, 2100), (25, 2600), (10, 3400)):
        log_metric(goal, on=today - timedelta(days=days_ago), value=value, today=today)
    done = tree.add_job(goal, title="Publish post 1", mode="keep", acceptance_criteria=["live"])
    tree.act(done, "complete")
    tree.add_job(goal, title="Tweak the logo", mode="keep")
    log_in(page, owner)

    page.goto(f"/goals/{goal.id}/results")
    page.wait_for_function("document.body.dataset.chartsReady === 'yes'")
    assert page.evaluate("Chart.getChart('metric-chart').data.datasets[0].data.length") == 3

    form = page.locator("#metric-form")
    form.locator("input[name=on]").fill(today.isoformat())
    form.locator("input[name=value]").fill("4200")
    form.locator("input[name=note]").fill("after the podcast episode")
    with page.expect_navigation():
        form.get_by_role("button", name="Log").click()

    assert page.get_by_text("Logged 4200").is_visible()
    page.wait_for_function("document.body.dataset.chartsReady === 'yes'")
    points = page.evaluate("Chart.getChart('metric-chart').data.datasets[0].data.map(p => p.y)")
    assert points == [2100, 2600, 3400, 4200]
    labels = page.evaluate("Chart.getChart('metric-chart').data.datasets.map(d => d.label)")
    assert labels[1] == "target (10000)" and labels[-1].startswith("deadline ")
    assert page.evaluate(DRAWN_PIXELS, "metric-chart") > 1000
    assert page.evaluate(DRAWN_PIXELS, "burnup-chart") > 1000
    assert page.locator("#busy-work").get_by_text("Tweak the logo").is_visible()
    assert db.session.query(MetricValue).filter_by(value=4200).count() == 1
    assert page.offsite_requests == [] and page.js_errors == []
    shot(page)


def test_a_bad_value_is_refused_on_the_page(page, owner, log_in, shot):
    goal = tree.create_goal(owner.id, title="Signups", metric_name="signups", target=100)
    log_in(page, owner)

    page.goto(f"/goals/{goal.id}/results")
    form = page.locator("#metric-form")
    form.locator("input[name=on]").fill(date(2020, 1, 1).isoformat())
    form.locator("input[name=value]").fill("a few")
    with page.expect_navigation():
        form.get_by_role("button", name="Log").click()

    assert page.locator("#metric-errors").inner_text() == "Not a valid float value."
    assert db.session.query(MetricValue).count() == 0
    shot(page)
