"""The Asana channel against its fake (tests/fakes/asana.py, real HTTP on loopback): the task
it makes, the key it finds again across pages, comments, the handshake, signatures, and
what each compact event means."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date

import pytest
from fakes import asana
from fakes.asana import FakeAsana
from fakes.receiver import Receiver
from fakes.sandbox_fixture import make_settings

from adapters.asana import AsanaAdapter
from adapters.base import EventKind, JobSpec, Notice, PersonRef
from dispatcher.errors import AdapterError, PayloadError, SignatureError

HOOK = "a-secret-asana-handed-over"
OPTIONS = {"project_gid": asana.PROJECT, "done_section_gid": asana.SECTION_DONE}
BOB = PersonRef(name="Bob Baker", email="bob@example.com")


@pytest.fixture
def fake():
    running = FakeAsana().start()
    yield running
    running.stop()


def make_adapter(tmp_path, fake, token=asana.TOKEN, options=OPTIONS) -> AsanaAdapter:
    return AsanaAdapter(
        make_settings(tmp_path, asana_api_base=fake.url),
        credentials={"token": token, "hook_secret": HOOK},
        options=options,
    )


@pytest.fixture
def adapter(tmp_path, fake):
    made = make_adapter(tmp_path, fake)
    yield made
    made.session.close()


def job(**overrides) -> JobSpec:
    values = {
        "job_id": 9,
        "title": "Draft the FAQ",
        "brief": "Ten questions customers ask most.",
        "acceptance_criteria": ("ten entries", "plain words"),
        "deliverable_kind": "url",
        "price_cents": 12000,
        "currency": "USD",
        "due_date": date(2030, 3, 1),
        "person": BOB,
        "submission_url": "https://dispatcher.example/s/tok-9",
    }
    values.update(overrides)
    return JobSpec(**values)


def test_a_job_becomes_a_task_in_the_project_assigned_to_the_person(adapter, fake):
    receipt = adapter.dispatch(job(), "key-1")
    task = fake.tasks[receipt.external_id]
    assert task["name"] == "Draft the FAQ"
    assert task["projects"] == [{"gid": asana.PROJECT, "resource_type": "project"}]
    assert task["assignee"]["gid"] == asana.BOB["gid"]  # found by the person's email
    assert task["due_on"] == "2030-03-01"
    for text in (
        "Ten questions customers ask most.",
        "- ten entries",
        "Pay: 120.00 USD",
        "Due: 2030-03-01",
        "https://dispatcher.example/s/tok-9",
        "Dispatcher ref: key-1",
    ):
        assert text in task["notes"]
    assert receipt.url == task["permalink_url"]
    create = next(r for r in fake.requests if r.method == "POST" and r.path.endswith("/tasks"))
    assert create.headers["authorization"] == f"Bearer {asana.TOKEN}"
    assert set(json.loads(create.body)) == {"data"}


def test_the_asana_handle_is_preferred_to_the_email(adapter, fake):
    person = PersonRef(name="Bob", email="someone@else.example", asana_handle=asana.BOB["gid"])
    receipt = adapter.dispatch(job(person=person), "key-h")
    assert fake.tasks[receipt.external_id]["assignee"]["gid"] == asana.BOB["gid"]


def test_an_unknown_assignee_is_asanas_400_with_its_message(adapter, fake):
    person = PersonRef(name="Nobody", email="nobody@example.com")
    with pytest.raises(AdapterError) as refused:
        adapter.dispatch(job(person=person), "key-n")
    assert refused.value.status == 400 and "assignee" in str(refused.value)
    assert fake.tasks == {}


def test_a_retry_finds_the_task_on_a_later_page(adapter, fake):
    for n in range(150):  # other tasks in the project: the key is on the second page
        fake.tasks[f"other-{n}"] = {
            "gid": f"other-{n}",
            "name": "x",
            "notes": "",
            "permalink_url": "",
        }
    first = adapter.dispatch(job(), "key-2")
    again = adapter.dispatch(job(), "key-2")
    assert again.external_id == first.external_id
    assert len(fake.tasks) == 151
    pages = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/tasks")]
    assert len(pages) == 4  # two pages for each look-up: the second one is read too


def test_wrong_token_is_a_permanent_refusal(tmp_path, fake):
    adapter = make_adapter(tmp_path, fake, token="nope")
    with pytest.raises(AdapterError) as refused:
        adapter.check()
    assert refused.value.status == 401 and "Not Authorized" in str(refused.value)


def test_check_names_the_user(adapter):
    assert adapter.check() == "Asana user Dispatcher (owner@example.com)"


def test_a_notice_is_one_comment_on_the_task_even_when_sent_twice(adapter, fake):
    task = adapter.dispatch(job(), "key-3").external_id
    notice = Notice(
        key="notice-9",
        kind="answer",
        person=BOB,
        subject="About your question",
        text="Plain words, please.",
        job_id=9,
        external_id=task,
    )
    adapter.notify(notice)
    adapter.notify(notice)
    fake.settle()
    [comment] = fake.comments(task)
    assert "Plain words, please." in comment


def test_register_webhook_fails_when_the_target_does_not_echo_the_secret(adapter, fake):
    target = Receiver(default_status=200).start()  # answers 200 without echoing
    try:
        with pytest.raises(AdapterError) as refused:
            adapter.register_webhook(target.url + "/hook", "unused")
        assert "handshake" in str(refused.value)
        [call] = target.requests
        assert call.headers["x-hook-secret"] == fake.handshakes[0]
        assert fake.webhooks == {}
    finally:
        target.stop()


def test_the_handshake_echoes_the_secret_and_hands_it_over(adapter):
    reply = adapter.handshake({"x-hook-secret": "s3cret"}, b"")
    assert reply is not None
    assert reply.headers == {"X-Hook-Secret": "s3cret"} and reply.secret == "s3cret"
    assert adapter.handshake({"x-hook-signature": "ab"}, b"{}") is None


# -- inbound --------------------------------------------------------------------------------
def body_of(*events) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def event(action: str, resource: dict, parent: dict | None = None, change=None) -> dict:
    made = {
        "user": {"gid": asana.BOB["gid"], "resource_type": "user"},
        "created_at": "2030-01-02T03:04:05.678Z",
        "action": action,
        "resource": resource,
        "parent": parent,
    }
    if change:
        made["change"] = change
    return made


TASK = {"gid": "task-1", "resource_type": "task", "resource_subtype": "default_task"}
COMPLETED = event("changed", TASK, change={"field": "completed", "action": "changed"})


def test_the_signature_is_hex_hmac_sha256_of_the_body(adapter):
    body = body_of(COMPLETED)
    expected = hmac.new(HOOK.encode(), body, hashlib.sha256).hexdigest()
    adapter.verify({"X-Hook-Signature": expected}, body)
    with pytest.raises(SignatureError):
        adapter.verify({"X-Hook-Signature": expected}, body + b" ")
    with pytest.raises(SignatureError):
        adapter.verify({"X-Hook-Signature": asana.sign(body, "another secret")}, body)
    with pytest.raises(SignatureError, match="missing"):
        adapter.verify({}, body)


def test_no_secret_before_the_handshake_verifies_nothing(tmp_path, fake):
    adapter = AsanaAdapter(
        make_settings(tmp_path, asana_api_base=fake.url), credentials={"token": asana.TOKEN}
    )
    body = body_of(COMPLETED)
    with pytest.raises(SignatureError, match="handshake"):
        adapter.verify({"X-Hook-Signature": asana.sign(body, "")}, body)


def test_a_completed_task_is_delivered(adapter):
    [delivered] = adapter.parse({}, body_of(COMPLETED))
    assert delivered.kind == EventKind.DELIVERED and delivered.external_id == "task-1"
    assert delivered.occurred_at.year == 2030 and delivered.occurred_at.tzinfo is not None
    assert delivered.raw == COMPLETED


def test_a_task_moved_to_the_done_section_is_delivered_and_elsewhere_ignored(adapter):
    done = {"gid": asana.SECTION_DONE, "resource_type": "section"}
    todo = {"gid": asana.SECTION_TODO, "resource_type": "section"}
    [moved] = adapter.parse({}, body_of(event("added", TASK, done)))
    assert moved.kind == EventKind.DELIVERED
    [elsewhere] = adapter.parse({}, body_of(event("added", TASK, todo)))
    assert elsewhere.kind == EventKind.IGNORED


def test_a_comment_is_a_message_about_its_task(adapter):
    story = {"gid": "story-1", "resource_type": "story", "resource_subtype": "comment_added"}
    [message] = adapter.parse({}, body_of(event("added", story, TASK)))
    assert message.kind == EventKind.MESSAGE and message.external_id == "task-1"
    other = {"gid": "story-2", "resource_type": "story", "resource_subtype": "assigned"}
    [system] = adapter.parse({}, body_of(event("added", other, TASK)))
    assert system.kind == EventKind.IGNORED


def test_our_own_comment_echoed_back_is_not_a_message(adapter):
    """A notice is a comment by the token's user (the owner's); Asana reports it like any
    other: it must not come back as a question from the person."""
    story = {"gid": "story-3", "resource_type": "story", "resource_subtype": "comment_added"}
    ours = {
        **event("added", story, TASK),
        "user": {"gid": asana.ME["gid"], "resource_type": "user"},
    }
    [echo] = adapter.parse({}, body_of(ours))
    assert echo.kind == EventKind.IGNORED
    [theirs] = adapter.parse({}, body_of(event("added", story, TASK)))
    assert theirs.kind == EventKind.MESSAGE


def test_a_heartbeat_is_one_ignored_event(adapter):
    [beat] = adapter.parse({}, b'{"events":[]}')
    assert beat.kind == EventKind.IGNORED and beat.platform_status == "heartbeat"


def test_event_ids_come_from_the_body_and_stay_stable(adapter):
    body = body_of(
        COMPLETED, event("changed", {**TASK, "gid": "task-2"}, change=COMPLETED["change"])
    )
    first, second = adapter.parse({}, body)
    expected = "asana-" + hashlib.sha256(body).hexdigest()[:40]
    assert adapter.event_id({}, body) == expected
    assert (first.event_id, second.event_id) == (f"{expected}-0", f"{expected}-1")
    assert [e.event_id for e in adapter.parse({}, body)] == [first.event_id, second.event_id]
    assert adapter.event_id({}, body_of(COMPLETED)) != expected


def test_malformed_bodies_are_payload_errors(adapter):
    for body in (b"not json", b"[]", b'{"events": {}}', body_of({"action": "changed"})):
        with pytest.raises(PayloadError):
            adapter.parse({}, body)
