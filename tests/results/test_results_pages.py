"""The results page over HTTP: what it shows, logging a value, and its validation."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from dispatcher.extensions import db
from dispatcher.models import MetricValue
from dispatcher.planning import tree
from dispatcher.today import local_today

from .conftest import make_owner


def _chart_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def test_page_shows_metric_rollups_channels_and_busy_work(login, owner, goal, flow):
    section = tree.add_job(goal, title="Guest posts", budget_cents=4000)
    job = flow.delegated(goal, "Write post 1", price=1500, parent=section)
    flow.accept(flow.deliver(flow.dispatch(job)), payout=1200)
    tree.add_job(goal, title="Tweak the logo", mode="keep")
    client = login(owner)

    response = client.get(f"/goals/{goal.id}/results")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "monthly visits" in page
    assert 'id="rollup-' in page and "Guest posts" in page
    assert "12.00 USD" in page  # spent
    assert "28.00 USD" in page  # left in the envelope
    assert 'id="channel-sandbox"' in page and "100%" in page
    assert "Tweak the logo" in page and "no acceptance criteria" in page
    assert "/static/vendor/chart.js/chart.umd.min.js" in page
    assert "cdn" not in page.lower()
    data = _chart_data(page)
    assert data["metric"]["target"] == 10_000
    assert data["burnup"]["done"][-1] == 1 and data["burnup"]["scope"][-1] == 2


def test_the_vendored_chart_library_is_served_with_its_licence(client):
    with client.get("/static/vendor/chart.js/chart.umd.min.js") as script:
        assert script.status_code == 200
        assert b"Chart.js v4" in script.data[:200]
    with client.get("/static/vendor/chart.js/LICENSE.md") as licence:
        assert b"MIT License" in licence.data


def test_log_a_value(login, owner, goal):
    client = login(owner)
    day = local_today(owner)

    response = client.post(
        f"/goals/{goal.id}/results/metric",
        data={"on": day.isoformat(), "value": "3150.5", "note": "after the podcast"},
    )

    assert response.status_code == 303
    reading = db.session.query(MetricValue).one()
    assert (reading.on, reading.value, reading.note) == (day, 3150.5, "after the podcast")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Logged 3150.5" in page
    assert _chart_data(page)["metric"]["points"][0]["y"] == 3150.5


def test_bad_values_are_400_with_the_reason(login, owner, goal):
    client = login(owner)
    tomorrow = local_today(owner) + timedelta(days=1)
    url = f"/goals/{goal.id}/results/metric"

    cases = [
        ({"on": "", "value": "10"}, "give the date of the reading"),
        ({"on": "2025-02-30", "value": "10"}, "Not a valid date value"),
        ({"on": "2025-01-01", "value": "lots"}, "Not a valid float value"),
        ({"on": "2025-01-01", "value": "nan"}, "finite number"),
        ({"on": tomorrow.isoformat(), "value": "10"}, "in the future"),
        ({"on": "2025-01-01", "value": "1", "note": "x" * 600}, "500"),
    ]
    for data, message in cases:
        response = client.post(url, data=data)
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), data
    assert db.session.query(MetricValue).count() == 0


def test_another_owners_goal_is_not_found(login, owner, app):
    bob = make_owner("bob@example.com")
    bobs = tree.create_goal(bob.id, title="Bob's", metric_name="x", target=1)
    client = login(owner)
    assert client.get(f"/goals/{bobs.id}/results").status_code == 404
    response = client.post(
        f"/goals/{bobs.id}/results/metric", data={"on": "2025-01-01", "value": "1"}
    )
    assert response.status_code == 404
    assert db.session.query(MetricValue).count() == 0


def test_an_unmeasurable_goal_is_flagged(login, owner):
    vague = tree.create_goal(owner.id, title="Be more visible")
    page = login(owner).get(f"/goals/{vague.id}/results").get_data(as_text=True)
    assert "This goal has no measurable target" in page
    assert "no result metric" in page and "no target value" in page


def test_duration_filter():
    from dispatcher.web.results import duration

    assert duration(None) == "—"
    assert duration(timedelta(minutes=45)) == "45 min"
    assert duration(timedelta(hours=3, minutes=20)) == "3 h 20 min"
    assert duration(timedelta(hours=2)) == "2 h"
    assert duration(timedelta(days=2, hours=4, minutes=10)) == "2 d 4 h"
