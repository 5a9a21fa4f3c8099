"""The submission page's refusals: file limits, empty actions, bad links, stale forms, and
CSRF (a form posted from elsewhere is refused); each a clear 4xx, never a 500."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Delivery, InboundEvent
from teammates.conftest import link_in
from teammates.test_email_loop import act, page_path


@pytest.fixture
def url(job, inbox, run_jobs) -> str:
    dispatch_service.dispatch_job(job)
    run_jobs()
    return link_in(inbox.last("brief"))


def _nothing_stored():
    return db.session.scalar(select(db.func.count()).select_from(InboundEvent)) == 0


def test_a_file_over_the_size_limit_is_refused(url, client):
    response = act(client, url, "submit", files=[(io.BytesIO(b"x" * 1001), "big.pdf")])
    assert response.status_code == 400
    assert "the limit is" in response.get_data(as_text=True)
    assert _nothing_stored()


def test_a_file_of_a_refused_type_is_refused(url, client):
    response = act(client, url, "submit", files=[(io.BytesIO(b"<script>"), "page.html")])
    assert response.status_code == 400
    assert "not accepted" in response.get_data(as_text=True)
    assert _nothing_stored()


def test_too_many_files_are_refused(url, client):
    many = [(io.BytesIO(b"a"), f"f{i}.txt") for i in range(6)]
    response = act(client, url, "submit", files=many)
    assert response.status_code == 400
    assert "at most 5 files" in response.get_data(as_text=True)


def test_a_body_too_large_gets_413_with_a_sentence(url, client):
    response = client.post(page_path(url), data={"action": "submit", "text": "x" * 400_000},
                           content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 413
    assert "more than this page takes" in response.get_data(as_text=True)


def test_file_names_are_never_trusted(url, client):
    response = act(client, url, "submit", files=[(io.BytesIO(b"hi"), "../../etc/passwd.txt")])
    assert response.status_code == 303
    delivery = db.session.scalars(select(Delivery)).one()
    [entry] = delivery.raw["files"]
    assert entry["name"] == "etc_passwd.txt"
    assert "/" not in entry["id"] and ".." not in entry["id"]


def test_empty_question_and_empty_submission_are_refused(url, client):
    assert act(client, url, "question", text="  ").status_code == 400
    response = act(client, url, "submit")
    assert response.status_code == 400
    assert "Hand in some text, a link or a file" in response.get_data(as_text=True)
    assert act(client, url, "submit", url="javascript:alert(1)").status_code == 400
    assert _nothing_stored()


def test_a_text_over_its_limit_is_refused_with_the_reason(url, client):
    response = act(client, url, "submit", text="x" * 20_001)
    assert response.status_code == 400
    assert "at most 20000" in response.get_data(as_text=True).replace("\n", " ")


def test_an_action_the_state_does_not_allow_is_refused(url, client):
    assert act(client, url, "submit", text="done").status_code == 303
    response = act(client, url, "decline")
    assert response.status_code == 400
    assert "no longer possible" in response.get_data(as_text=True)


def test_a_form_without_its_nonce_is_refused(url, client):
    response = client.post(page_path(url), data={"action": "take"})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_an_order_not_recorded_yet_asks_to_wait(job, client):
    """A channel that sends its link from `dispatch` can be faster than the worker's
    commit: the page says so instead of storing an event about no order."""
    from dispatcher.models import Assignment
    from dispatcher.teammates import links
    from teammates.test_email_loop import act as act_on

    dispatch_service.dispatch_job(job)
    place = db.session.scalars(select(Assignment)).one()
    url = links.mint(place)
    db.session.commit()
    response = act_on(client, url, "take")
    assert response.status_code == 400
    assert "still being sent" in response.get_data(as_text=True)
    assert _nothing_stored()
