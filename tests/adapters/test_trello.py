"""The Trello channel against its fake (tests/fakes/trello.py, real HTTP on loopback): the
card it makes, the key it finds again, comments, the HEAD check, signatures over the
callback URL, and what each action means."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from fakes import trello
from fakes.receiver import Receiver
from fakes.sandbox_fixture import make_settings
from fakes.trello import FakeTrello

from adapters.base import EventKind, JobSpec, Notice, PersonRef
from adapters.trello import TrelloAdapter
from dispatcher.errors import AdapterError, SignatureError

CALLBACK = "http://127.0.0.1:9/webhooks/trello/abc"
CREDENTIALS = {"api_key": trello.API_KEY, "token": trello.TOKEN, "app_secret": trello.APP_SECRET}
OPTIONS = {"board_id": trello.BOARD, "list_id": trello.TODO, "done_list_id": trello.DONE}
BOB = PersonRef(name="Bob Baker", email="bob@example.com", trello_handle="@bob")


@pytest.fixture
def fake():
    running = FakeTrello().start()
    yield running
    running.stop()


def make_adapter(tmp_path, fake, credentials=CREDENTIALS, options=OPTIONS) -> TrelloAdapter:
    adapter = TrelloAdapter(
        make_settings(tmp_path, trello_api_base=fake.url),
        credentials=credentials,
        options=options,
    )
    adapter.webhook_url = CALLBACK
    return adapter


@pytest.fixture
def adapter(tmp_path, fake):
    made = make_adapter(tmp_path, fake)
    yield made
    made.session.close()


def job(**overrides) -> JobSpec:
    values = {
        "job_id": 7,
        "title": "Proofread the launch post",
        "brief": "Fix typos and tighten the intro.",
        "acceptance_criteria": ("no typos", "intro under 60 words"),
        "deliverable_kind": "url",
        "price_cents": 4050,
        "currency": "EUR",
        "due_date": date(2030, 1, 31),
        "person": BOB,
        "submission_url": "https://dispatcher.example/s/tok-123",
    }
    values.update(overrides)
    return JobSpec(**values)


def test_a_job_becomes_a_card_in_the_list_with_the_brief_the_pay_and_the_link(adapter, fake):
    receipt = adapter.dispatch(job(), "key-1")
    card = fake.cards[receipt.external_id]
    assert card["idList"] == trello.TODO and card["idBoard"] == trello.BOARD
    assert card["name"] == "Proofread the launch post"
    for text in (
        "Fix typos and tighten the intro.",
        "- no typos",
        "- intro under 60 words",
        "Due: 2030-01-31",
        "Pay: 40.50 EUR",
        "https://dispatcher.example/s/tok-123",
        "Dispatcher ref: key-1",
    ):
        assert text in card["desc"]
    assert card["due"].startswith("2030-01-31")
    assert card["idMembers"] == [trello.BOB["id"]]  # the handle, looked up as a member id
    assert receipt.url == card["shortUrl"]
    # key and token travel as query parameters, as Trello takes them
    create = next(r for r in fake.requests if r.method == "POST" and r.path == "/1/cards")
    assert create.headers.get("authorization") is None


def test_a_retry_finds_the_card_instead_of_making_another(adapter, fake):
    first = adapter.dispatch(job(), "key-2")
    assert adapter.find("key-2").external_id == first.external_id
    assert adapter.dispatch(job(), "key-2").external_id == first.external_id
    assert len(fake.cards) == 1
    assert adapter.find("key-2x") is None  # a key that is a prefix of another is not it


def test_a_job_without_a_person_has_no_members(adapter, fake):
    receipt = adapter.dispatch(job(person=None, due_date=None), "key-3")
    assert fake.cards[receipt.external_id]["idMembers"] == []
    assert fake.cards[receipt.external_id]["due"] is None


def test_wrong_token_is_a_permanent_refusal(tmp_path, fake):
    adapter = make_adapter(tmp_path, fake, credentials={**CREDENTIALS, "token": "nope"})
    with pytest.raises(AdapterError) as refused:
        adapter.check()
    assert refused.value.status == 401 and "invalid token" in str(refused.value)


def test_a_connection_without_a_list_is_refused_before_any_card(tmp_path, fake):
    adapter = make_adapter(tmp_path, fake, options={"board_id": trello.BOARD})
    with pytest.raises(AdapterError, match="list_id"):
        adapter.dispatch(job(), "key-4")
    assert fake.cards == {}


def test_check_names_the_member(adapter):
    assert adapter.check() == "Trello member dispatcherbot"


def test_a_notice_is_one_comment_on_the_card_even_when_sent_twice(adapter, fake):
    card = adapter.dispatch(job(), "key-5").external_id
    notice = Notice(
        key="notice-1",
        kind="revision",
        person=BOB,
        subject="Please revise",
        text="The intro is still long.",
        job_id=7,
        external_id=card,
        submission_url="https://dispatcher.example/s/tok-123",
    )
    adapter.notify(notice)
    adapter.notify(notice)
    fake.settle()
    [comment] = fake.comments(card)
    assert "Please revise" in comment and "The intro is still long." in comment
    assert "https://dispatcher.example/s/tok-123" in comment


def test_register_webhook_needs_the_head_check_to_answer_200(adapter, fake):
    refusing = Receiver(default_status=404).start()
    try:
        with pytest.raises(AdapterError) as refused:
            adapter.register_webhook(refusing.url + "/hook", "unused")
        assert refused.value.status == 400 and "did not return 200" in str(refused.value)
        assert [r.method for r in refusing.requests] == ["HEAD"]
        assert fake.webhooks == {}
    finally:
        refusing.stop()
    accepting = Receiver(default_status=200).start()
    try:
        adapter.register_webhook(accepting.url + "/hook", "unused")
        adapter.register_webhook(accepting.url + "/hook", "unused")  # kept, not made again
        [hook] = fake.webhooks.values()
        assert hook["callbackURL"] == accepting.url + "/hook"
        assert hook["idModel"] == trello.BOARD
    finally:
        accepting.stop()


# -- inbound --------------------------------------------------------------------------------
def action(type_: str, *, when: datetime | None = None, **data) -> bytes:
    when = when or datetime.now(UTC)
    data.setdefault("card", {"id": "card-1", "name": "Proofread", "shortLink": "AbCd1234"})
    body = {
        "action": {
            "id": "act-1",
            "type": type_,
            "date": when.isoformat().replace("+00:00", "Z"),
            "data": data,
            "memberCreator": {"id": "m1", "username": "bob"},
        },
        "model": {"id": trello.BOARD},
    }
    return json.dumps(body).encode()


def signed(body: bytes, url: str = CALLBACK, secret: str = trello.APP_SECRET) -> dict:
    return {"X-Trello-Webhook": trello.sign(body, url, secret)}


def test_the_signature_covers_the_callback_url_as_registered(adapter):
    body = action("commentCard", text="hello")
    adapter.verify(signed(body), body)
    with pytest.raises(SignatureError):
        adapter.verify(signed(body, url=CALLBACK + "/other"), body)
    with pytest.raises(SignatureError):
        adapter.verify(signed(body, secret="another app"), body)
    with pytest.raises(SignatureError, match="missing"):
        adapter.verify({}, body)


def test_an_old_action_is_refused_as_a_replay(adapter):
    body = action("commentCard", text="hello", when=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(SignatureError, match="window"):
        adapter.verify(signed(body), body)


def test_the_signature_is_base64_hmac_sha1_of_body_and_url(adapter):
    import hashlib
    import hmac

    body = action("commentCard", text="hello")
    expected = base64.b64encode(
        hmac.new(trello.APP_SECRET.encode(), body + CALLBACK.encode(), hashlib.sha1).digest()
    ).decode()
    adapter.verify({"x-trello-webhook": expected}, body)


def parse_one(adapter, body: bytes):
    [event] = adapter.parse({}, body)
    return event


def test_a_card_moved_to_the_done_list_is_delivered(adapter):
    body = action(
        "updateCard",
        listBefore={"id": trello.TODO, "name": "To do"},
        listAfter={"id": trello.DONE, "name": "Done"},
    )
    event = parse_one(adapter, body)
    assert event.kind == EventKind.DELIVERED
    assert event.external_id == "card-1" and event.event_id == "act-1"
    assert event.content == "Moved the card to Done"
    assert event.url == "https://trello.com/c/AbCd1234"
    assert event.worker == "bob"
    assert adapter.event_id({}, body) == "act-1"


def test_a_card_moved_elsewhere_is_ignored(adapter):
    body = action("updateCard", listAfter={"id": "some-other-list", "name": "Doing"})
    assert parse_one(adapter, body).kind == EventKind.IGNORED


def test_a_comment_with_a_link_is_delivered_and_without_one_is_a_message(adapter):
    delivered = parse_one(adapter, action("commentCard", text="Done: https://docs.example/d/1."))
    assert delivered.kind == EventKind.DELIVERED
    assert delivered.url == "https://docs.example/d/1"
    assert delivered.content == "Done: https://docs.example/d/1."
    message = parse_one(adapter, action("commentCard", text="Which tone do you want?"))
    assert message.kind == EventKind.MESSAGE and message.content == "Which tone do you want?"


def test_our_own_comments_echoed_back_are_ignored(adapter):
    text = "Please revise\n\nhttps://dispatcher.example/s/x\n\nDispatcher ref: notice-1"
    assert parse_one(adapter, action("commentCard", text=text)).kind == EventKind.IGNORED


def test_other_known_actions_are_ignored_and_unknown_ones_unknown(adapter):
    assert parse_one(adapter, action("createCard")).kind == EventKind.IGNORED
    unknown = parse_one(adapter, action("teleportCard"))
    assert unknown.kind == EventKind.UNKNOWN and unknown.platform_status == "teleportCard"
