"""The submission page with CSRF on, as in production: a form posted from elsewhere (no
token) is refused and nothing is stored; the page's own form goes through."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import InboundEvent
from teammates.conftest import link_in
from teammates.test_email_loop import nonce_of, page_path


@pytest.fixture
def url(job, inbox, run_jobs) -> str:
    dispatch_service.dispatch_job(job)
    run_jobs()
    return link_in(inbox.last("brief"))


@pytest.fixture
def app_config(app_config):
    return {**app_config, "extra": {}}  # CSRF on, as in production


def test_csrf_is_checked_and_the_page_works_with_it(url, client):
    page = client.get(page_path(url)).get_data(as_text=True)
    nonce = nonce_of(page)
    refused = client.post(page_path(url), data={"action": "question", "nonce": nonce,
                                                 "text": "Kept for me?"})  # fmt: skip
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "This form has expired" in html and "Kept for me?" in html  # on their own page
    assert db.session.scalar(select(db.func.count()).select_from(InboundEvent)) == 0
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', page
    )
    assert token, page
    taken = client.post(page_path(url), data={"action": "take", "nonce": nonce,
                                              "csrf_token": token.group(1)})  # fmt: skip
    assert taken.status_code == 303
