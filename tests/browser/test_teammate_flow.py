"""Issue 9's "Done means" in a real browser: a new owner adds a teammate, delegates a job to
her by email, opens the letter in the local mailbox (no SMTP configured), and the teammate
follows its link in a browser of her own (no cookies, no account): she takes the job, asks
a question, reads the answer, hands in a file; the owner asks for a revision, a new letter
brings a fresh link, she hands in again, the owner accepts; the scorecard and the goal's
spend move. A forged link and a withdrawn one get a clear page, never the job.

Only pages are used; `run_jobs` drains the queues in this process between steps (the send
task, the outbox's letters, the decisions).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from browser.conftest import loopback_page
from dispatcher.extensions import db
from dispatcher.models import Delivery

pytestmark = pytest.mark.browser

QUESTION = "Should the post name the launch partners?"
ANSWER = "Yes: Acme and Globex, in that order."
FEEDBACK = "Add the launch date in the first paragraph."
#: a submission link in a letter: the live server's /t/<token>
OVERFLOW = "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
LINK = re.compile(r"https?://127\.0\.0\.1:\d+(/t/[A-Za-z0-9_-]+)")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "smtp_url": ""}  # no SMTP: mail stays in the local mailbox


@pytest.fixture
def teammate(browser, live_server):
    """A second browser context: the teammate's own browser, with no cookies at all."""
    page = loopback_page(browser, live_server.url, 390, 844)
    yield page
    page.context.close()


def letters(page) -> list[tuple[str, str]]:
    """(subject, href) of each letter in the mailbox, newest first."""
    page.goto("/mailbox")
    rows = page.locator("#letters tbody a")
    return [
        (rows.nth(i).inner_text(), rows.nth(i).get_attribute("href")) for i in range(rows.count())
    ]


def link_in_letter(page, href: str) -> str:
    """Open a letter and take the one submission link in it (the path)."""
    page.goto(href)
    found = LINK.findall(page.locator("#body").inner_text())
    assert len(found) == 1, page.locator("#body").inner_text()
    return found[0]


def submitted(job_id: int) -> list[Delivery]:
    db.session.expire_all()
    return list(
        db.session.query(Delivery)
        .filter_by(job_id=job_id, status="submitted")
        .order_by(Delivery.id)
    )


def clean(page, axe) -> None:
    """The open page has no serious or critical axe-core violation, and no horizontal scroll
    (the teammate's browser is a 390 px phone)."""
    assert axe(page) == [], page.url
    assert page.evaluate(OVERFLOW) == 0, page.url


def figure(page, name: str) -> str:
    return page.locator(f"#scorecard [data-figure={name}]").inner_text().strip()


def test_a_teammate_by_email_from_brief_to_pay(
    page, teammate, owner, goal, live_server, log_in, run_jobs, shot, tmp_path, axe
):
    log_in(page, owner)

    # the teammate, on /people
    page.goto("/people")
    form = page.locator("#add-person")
    form.get_by_label("Name", exact=True).fill("Wendy Writer")
    form.get_by_label("Email", exact=True).fill("wendy@example.com")
    form.get_by_label("Rate per job").fill("25.00")
    with page.expect_navigation():
        form.get_by_role("button", name="Add person").click()
    assert "Added Wendy Writer." in page.locator("main").inner_text()
    person_href = page.locator("#people a", has_text="Wendy Writer").get_attribute("href")
    shot(page, "people")

    # the Email channel, on the connections page
    page.goto("/settings/connections")
    connect = page.locator("#connect-email")
    connect.get_by_label("Name", exact=True).fill("Email")
    with page.expect_navigation():
        connect.get_by_role("button", name="Connect").click()
    page.goto("/settings/connections")
    assert page.locator("#connections tr", has_text="Email").count() == 1

    # a job on the goal, delegated to Wendy by email (the picker), dispatched
    page.goto(f"/goals/{goal.id}")
    page.locator("#top-title").fill("Write the launch post")
    with page.expect_navigation():
        page.locator("#top-title").press("Enter")
    line = page.locator("li.node", has_text="Write the launch post")
    job_id = int(line.get_attribute("id").removeprefix("job-"))
    line.get_by_label("Who does it").select_option("delegate")
    line.get_by_label("Channel").select_option(label="Email (email)")
    line.get_by_label("Person").select_option(label="Wendy Writer")
    with page.expect_navigation():
        line.locator("form.mode").get_by_role("button", name="Save").click()
    line = page.locator(f"li#job-{job_id}")
    assert "Wendy Writer" in line.inner_text() and "25.00" in line.inner_text()
    shot(page, "delegated")
    with page.expect_navigation():
        line.get_by_role("button", name=re.compile("^Dispatch")).click()
    run_jobs()

    # the letter, in the mailbox
    [(subject, href)] = letters(page)
    assert "Write the launch post" in subject
    first_link = link_in_letter(page, href)
    shot(page, "letter")

    # the teammate follows it: no account, no cookies
    assert teammate.context.cookies() == []
    answer = teammate.goto(first_link)
    assert answer.status == 200
    assert teammate.locator("h1").inner_text() == "Write the launch post"
    assert "25.00" in teammate.locator("#pay").inner_text()
    with teammate.expect_navigation():
        teammate.get_by_role("button", name="I'll do it").click()
    assert teammate.locator("#state").inner_text() == "You took this job"
    teammate.get_by_label("Your work, or your question").fill(QUESTION)
    with teammate.expect_navigation():
        teammate.get_by_role("button", name="Ask a question").click()
    assert QUESTION in teammate.locator("#questions").inner_text()
    clean(teammate, axe)
    shot(teammate, "teammate-asked")
    run_jobs()

    # the owner sees the question on Today, and answers it on the job page
    page.goto("/today")
    asked = page.locator("#questions li", has_text=QUESTION)
    with page.expect_navigation():
        asked.get_by_role("link", name="Answer").click()
    assert urlsplit(page.url).path == f"/jobs/{job_id}"
    question = page.locator("#teammate .question", has_text=QUESTION)
    assert axe(page) == []  # the job page with its teammate panel and answer form
    shot(page, "question-on-job-page")
    question.get_by_label("Your answer").fill(ANSWER)
    with page.expect_navigation():
        question.get_by_role("button", name="Send answer").click()
    assert "Answer sent." in page.locator("main").inner_text()
    run_jobs()

    # the teammate sees the answer, and hands in a file
    teammate.goto(first_link)
    assert f"Answer: {ANSWER}" in teammate.locator("#questions").inner_text()
    draft = tmp_path / "launch-post.md"
    draft.write_text("# We launch\n\nWith Acme and Globex.\n")
    teammate.get_by_label("Your work, or your question").fill("The post, as a file.")
    teammate.get_by_label("Files").set_input_files(str(draft))
    with teammate.expect_navigation():
        teammate.get_by_role("button", name="Hand in my work").click()
    assert teammate.locator("#state").inner_text() == "Handed in: waiting for review"
    shot(teammate, "teammate-handed-in")
    run_jobs()

    # the owner asks for a revision in the review queue
    [first] = submitted(job_id)
    page.goto("/review")
    card = page.locator(f"#delivery-{first.id}")
    assert "launch-post.md" in card.inner_text()
    card.locator("summary", has_text="Ask for a revision").click()
    card.get_by_label("What should change").fill(FEEDBACK)
    card.get_by_role("button", name="Send back for revision").click()
    card.locator(".outcome").wait_for()
    shot(page, "revision-asked")
    run_jobs()

    # a new letter, with a fresh link
    mail = letters(page)  # newest first: the revision, the answer, the brief
    assert [subject.split(":")[0] for subject, _ in mail] == ["Please revise", "Answer", "New job"]
    shot(page, "mailbox")
    second_link = link_in_letter(page, mail[0][1])
    assert second_link != first_link

    # the teammate hands in again, through the fresh link
    teammate.goto(second_link)
    assert teammate.locator("#state").inner_text() == "A revision was asked for"
    assert FEEDBACK in teammate.locator("#feedback").inner_text()
    clean(teammate, axe)
    shot(teammate, "teammate-revision")
    teammate.get_by_label("Your work, or your question").fill(
        "We launch on 1 March, with Acme and Globex."
    )
    with teammate.expect_navigation():
        teammate.get_by_role("button", name="Hand in my work").click()
    assert teammate.locator("#state").inner_text() == "Handed in: waiting for review"
    run_jobs()

    # the owner accepts it
    [second] = submitted(job_id)
    assert second.id != first.id
    page.goto("/review")
    card = page.locator(f"#delivery-{second.id}")
    card.get_by_role("button", name="Accept and pay").click()
    card.locator(".outcome").wait_for()
    run_jobs()

    # the scorecard and the goal's spend moved
    page.goto(person_href)
    figures = {name: figure(page, name) for name in ("jobs", "revisions", "first-pass", "paid")}
    assert axe(page) == []
    assert figures == {"jobs": "1", "revisions": "1.0", "first-pass": "0%", "paid": "25.00 USD"}
    shot(page, "teammate-scorecard")
    page.goto(f"/goals/{goal.id}")
    assert page.locator("#spent").inner_text() == "25.00 USD"
    print(f"\nscorecard after the loop: {figures}")

    # a forged link gets a clear page, never the job
    forged = teammate.goto("/t/" + "x" * 43)
    assert forged.status == 404
    assert "This link cannot be used" in teammate.locator("main").inner_text()
    assert "Write the launch post" not in teammate.content()
    clean(teammate, axe)
    shot(teammate, "forged-link")

    # a withdrawn link too: it worked until the owner withdrew it from the job page
    assert teammate.goto(second_link).status == 200
    page.goto(f"/jobs/{job_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.locator("#revoke-links").click()
    assert "Withdrew" in page.locator("main").inner_text()
    for link in (first_link, second_link):
        gone = teammate.goto(link)
        assert gone.status == 410
        assert "withdrawn" in teammate.locator("#link-gone").inner_text()
        assert "Write the launch post" not in teammate.content()
    shot(teammate, "withdrawn-link")

    assert page.js_errors == [] and page.offsite_requests == []
    assert teammate.offsite_requests == []
