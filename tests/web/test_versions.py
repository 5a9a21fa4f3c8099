"""The job page shows which version of the job's text each order went out with."""

from __future__ import annotations

import re

from dispatcher.dispatch import service as dispatch_service
from dispatcher.planning import tree

from .conftest import page


def test_job_page_shows_the_version_each_order_saw(client, make_job):
    job = make_job("Write v1", mode="delegate", channel="sandbox", price_cents=500)
    first = dispatch_service.dispatch_job(job)
    tree.update_job(job, title="Write v2", brief="Longer, please")
    dispatch_service.cancel_job(job)
    second = dispatch_service.retry_job(job)

    html = page(client.get(f"/jobs/{job.id}"))
    assert 'id="job-version">version 2<' in html
    first_row = re.search(rf'<tr id="dispatch-{first.id}">.*?</tr>', html, re.S).group(0)
    second_row = re.search(rf'<tr id="dispatch-{second.id}">.*?</tr>', html, re.S).group(0)
    assert '<a href="#version-1">v1</a>' in first_row
    assert "v2 (current)" in second_row
    assert 'id="version-1"' in html and "Version 1: Write v1" in html
    timeline = html[html.index('id="timeline"') :]
    assert "new version:</span> v2" in timeline
    assert timeline.count("order sent:</span> v1") == 1
    assert timeline.count("order sent:</span> v2") == 1


def test_a_job_never_sent_shows_no_versions(client, make_job):
    job = make_job("Write v1")
    tree.update_job(job, title="Write it better")
    html = page(client.get(f"/jobs/{job.id}"))
    assert 'id="job-version"' not in html and 'id="versions"' not in html
