"""With no SMTP configured, teammate mail stays in the local mailbox: the owner opens it at
/mailbox (only their own connections' mail) and follows the link as the teammate would."""

from __future__ import annotations

import re

import pytest
from dispatch.helpers import make_owner

from dispatcher import connections
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db


@pytest.fixture
def app_config(app_config):
    return {**app_config, "smtp_url": ""}


def test_the_loop_runs_on_the_local_mailbox(job, client, login, run_jobs):
    dispatch_service.dispatch_job(job)
    run_jobs()
    owner = login()
    box = owner.get("/mailbox")
    assert box.status_code == 200
    html = box.get_data(as_text=True)
    assert "New job: Write the launch post" in html
    letter_url = re.search(r'href="(/mailbox/\d+/[^"]+)"', html).group(1)
    letter = owner.get(letter_url).get_data(as_text=True)
    assert "800 words about the launch." in letter
    link = re.search(r"http://dispatcher\.test(/t/[A-Za-z0-9_-]+)", letter).group(1)
    owner.post("/logout")
    page = client.get(link)
    assert page.status_code == 200 and "Mentions the date" in page.get_data(as_text=True)


def test_another_owner_sees_none_of_it(job, client, run_jobs):
    dispatch_service.dispatch_job(job)
    run_jobs()
    bob = make_owner("bob@example.com")
    connections.create(bob.id, "email", "Bob's mail")
    db.session.commit()
    client.post("/login", data={"email": "bob@example.com", "password": "correct horse"})
    assert "Write the launch post" not in client.get("/mailbox").get_data(as_text=True)
    ann_connection = job.connection_id
    assert client.get(f"/mailbox/{ann_connection}/x.eml").status_code == 404


def test_the_mailbox_needs_a_login(client):
    response = client.get("/mailbox")
    assert response.status_code in (302, 303, 401)
