"""The whole email loop against a real SMTP server on loopback: the mail is read from the
server, the link in it followed, and the submission page driven with the test client."""

from __future__ import annotations

import io
import re

from sqlalchemy import select

from dispatcher.dispatch import review as review_service
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Assignment, Delivery, Event, InboundEvent, MicroJob, OutboxMessage
from teammates.conftest import body, link_in

NONCE = re.compile(r'name="nonce"[^>]*value="([^"]+)"')


def nonce_of(page: str) -> str:
    found = NONCE.search(page) or re.search(r'value="([^"]+)"[^>]*name="nonce"', page)
    assert found, page
    return found.group(1)


def page_path(url: str) -> str:
    return url.removeprefix("http://dispatcher.test")


def act(client, link: str, action: str, **fields):
    page = client.get(page_path(link))
    assert page.status_code == 200, page.get_data(as_text=True)
    data = {"action": action, "nonce": nonce_of(page.get_data(as_text=True)), **fields}
    return client.post(page_path(link), data=data, content_type="multipart/form-data")


def dispatch_and_send(job, run_jobs):
    dispatch_service.dispatch_job(job)
    run_jobs()


def test_dispatch_by_email_sends_the_brief_with_a_working_link(job, inbox, person, client,
                                                               run_jobs):  # fmt: skip
    dispatch_and_send(job, run_jobs)
    assert inbox.kinds() == ["brief"]
    mail = inbox.messages[0]
    assert mail["To"] == "Wendy Writer <wendy@example.com>"
    text = body(mail)
    for expected in ("800 words about the launch.", "Mentions the date", "Has a title",
                     "Pay: 25.00 USD"):  # fmt: skip
        assert expected in text
    place = db.session.scalars(select(Assignment).where(Assignment.job_id == job.id)).one()
    assert place.person_id == person.id
    page = client.get(page_path(link_in(mail)))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Write the launch post" in html and "Mentions the date" in html
    assert "25.00 USD" in html


def test_the_whole_loop_question_answer_file_revision_accept(job, inbox, client, login,
                                                             run_jobs):  # fmt: skip
    dispatch_and_send(job, run_jobs)
    url = link_in(inbox.last("brief"))

    # the teammate takes the job and asks a question
    assert act(client, url, "take").status_code == 303
    assert db.session.get(MicroJob, job.id).status == "taken"
    assert act(client, url, "question", text="Which launch date?").status_code == 303
    question = db.session.scalars(
        select(Event).where(Event.job_id == job.id, Event.kind == "teammate.question")
    ).one()
    assert question.data["text"] == "Which launch date?"

    # the owner sees it on Today and answers from the job page
    owner = login()
    today = owner.get("/today").get_data(as_text=True)
    assert "Which launch date?" in today
    job_page = owner.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f"question-{question.id}" in job_page
    answered = owner.post(f"/jobs/{job.id}/questions/{question.id}/answer",
                          data={"text": "March 3rd."})  # fmt: skip
    assert answered.status_code == 303
    run_jobs()
    answer_mail = inbox.last("answer")
    assert "Which launch date?" in body(answer_mail) and "March 3rd." in body(answer_mail)
    assert "Which launch date?" not in owner.get("/today").get_data(as_text=True)
    on_page = client.get(page_path(url)).get_data(as_text=True)
    assert "Which launch date?" in on_page and "March 3rd." in on_page

    # the teammate submits a file: a delivery waits for review
    sent = act(client, url, "submit", text="Draft attached.",
               files=[(io.BytesIO(b"the post"), "post.txt")])  # fmt: skip
    assert sent.status_code == 303
    delivery = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id)).one()
    assert delivery.status == "submitted"
    assert [f["name"] for f in delivery.raw["files"]] == ["post.txt"]
    download = owner.get(f"/deliveries/{delivery.id}/files/{delivery.raw['files'][0]['id']}")
    assert download.status_code == 200 and download.data == b"the post"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"].startswith("attachment")
    download.close()

    # the owner asks for a revision: a mail with a fresh link to the same page
    review_service.request_revision(delivery, feedback="Add the date in the title.")
    run_jobs()
    revision = inbox.last("revision")
    assert "Add the date in the title." in body(revision)
    fresh = link_in(revision)
    assert fresh != url
    page = client.get(page_path(fresh)).get_data(as_text=True)
    assert "Add the date in the title." in page
    resubmitted = act(client, fresh, "submit", text="Revised.", url="https://docs.example/post")
    assert resubmitted.status_code == 303
    second = db.session.scalars(
        select(Delivery).where(Delivery.job_id == job.id).order_by(Delivery.id.desc())
    ).first()
    assert second.id != delivery.id and second.url == "https://docs.example/post"

    # accept: confirmed at once (no platform), paid, and the person is told
    review_service.accept(second)
    run_jobs()
    db.session.expire_all()
    assert db.session.get(MicroJob, job.id).status == "paid"
    assert db.session.get(MicroJob, job.id).spent_cents == 2500
    assert inbox.kinds() == ["brief", "answer", "revision", "accepted"]
    assert all(m.state == "sent" for m in db.session.scalars(select(OutboxMessage)))


def test_a_double_submit_is_stored_once(job, inbox, client, run_jobs):
    dispatch_and_send(job, run_jobs)
    url = link_in(inbox.last("brief"))
    nonce = nonce_of(client.get(page_path(url)).get_data(as_text=True))
    for _ in range(2):
        response = client.post(page_path(url), data={"action": "submit", "nonce": nonce,
                                                     "text": "Done."})  # fmt: skip
        assert response.status_code == 303
    assert db.session.scalar(select(db.func.count()).select_from(Delivery)) == 1
    assert db.session.scalar(select(db.func.count()).select_from(InboundEvent)) == 1


def test_decline_gives_the_job_back_and_its_money(job, inbox, client, run_jobs):
    dispatch_and_send(job, run_jobs)
    url = link_in(inbox.last("brief"))
    assert act(client, url, "decline", text="Too busy this week.").status_code == 303
    job = db.session.get(MicroJob, job.id)
    assert job.status == "expired"
    assert job.reserved_cents == 0


def test_a_decision_is_confirmed_at_once_without_a_platform(job, inbox, client, run_jobs):
    """Dispatcher is the marketplace: no push is left owed, and the reject is mailed."""
    dispatch_and_send(job, run_jobs)
    act(client, link_in(inbox.last("brief")), "submit", text="Here.")
    delivery = db.session.scalars(select(Delivery)).one()
    review = review_service.reject(delivery, reason="Off topic.")
    db.session.expire_all()
    assert review.push_state == "pushed"  # before any worker ran
    job = db.session.get(MicroJob, job.id)
    assert job.status == "rejected" and job.reserved_cents == 0
    run_jobs()
    rejected = inbox.last("rejected")
    assert "Off topic." in body(rejected)
    assert "/t/" not in body(rejected)  # a decision carries no link to act on
