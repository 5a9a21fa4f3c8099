"""Issue 11: every action says what it did, with the right counts."""

from __future__ import annotations

from .conftest import page

SEVEN = "Pitch\n  Find 12 blogs\n  Write the pitch\n    Subject\n    Body\nWrite\nSend"


def test_splitting_a_seven_line_outline_says_seven_jobs(client, goal, make_job):
    job = make_job("Guest post #1")
    response = client.post(f"/jobs/{job.id}/split", data={"titles": SEVEN})
    assert response.status_code == 303
    html = page(client.get(response.headers["Location"]))
    assert "Split “Guest post #1” into 7 jobs." in html


def test_the_planning_pages_count_every_job_made(client, goal, make_job):
    job = make_job("Guest post #1")
    response = client.post(f"/goals/{goal.id}/jobs/{job.id}/breakdown", data={"text": SEVEN})
    assert "Split &#39;Guest post #1&#39; into 7 jobs." in page(
        client.get(response.headers["Location"])
    )

    response = client.post(f"/goals/{goal.id}/outline", data={"text": "A\n  a1\n  a2\nB"})
    assert "Added 4 jobs from your list." in page(client.get(response.headers["Location"]))


def test_add_job_and_add_child_confirm(client, goal, make_job):
    response = client.post(f"/goals/{goal.id}/jobs", data={"title": "Publish 4 guest posts"})
    assert response.status_code == 303
    assert "Added “Publish 4 guest posts”." in page(client.get(response.headers["Location"]))

    parent = make_job("Write")
    response = client.post(f"/jobs/{parent.id}/children", data={"title": "Outline"})
    assert "Added “Outline” under “Write”." in page(client.get(response.headers["Location"]))


def test_delegate_save_confirms(client, goal, make_job):
    job = make_job("Find 20 blogs")
    response = client.post(f"/jobs/{job.id}/mode", data={"mode": "delegate", "channel": "sandbox"})
    assert response.status_code == 303
    html = page(client.get(response.headers["Location"]))
    assert "Saved: “Find 20 blogs” goes to sandbox when you dispatch it." in html

    response = client.post(f"/jobs/{job.id}/mode", data={"mode": "keep", "channel": ""})
    assert "Saved: you do “Find 20 blogs” yourself." in page(
        client.get(response.headers["Location"])
    )
