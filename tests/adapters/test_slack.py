"""The Slack teammate channel against the fake Slack (tests/fakes/slack.py) over real HTTP:
the Block Kit message Slack accepts, notices, v0 signatures (Slack's published vector),
the interactivity callback parsed into events, and outbound URL safety."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from fakes.sandbox_fixture import make_settings
from fakes.slack import SIGNING_SECRET, FakeSlack, Invalid, buttons, check_message

from adapters.base import EventKind, JobSpec, Notice, PersonRef
from adapters.slack import SlackAdapter, verify_signature
from dispatcher.errors import AdapterError, PayloadError, RetryableAdapterError, SignatureError
from dispatcher.security.outbound import UnsafeURL

ANN = PersonRef(name="Ann Writer", email="ann@example.com", slack_handle="U0ANN1234")
LINK = "https://dispatcher.example/t/abc123"


@pytest.fixture
def slack():
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def adapter(slack, tmp_path):
    made = SlackAdapter(
        make_settings(tmp_path, outbound_allowlist=(slack.hostport,)),
        credentials={"webhook_url": slack.webhook_url, "signing_secret": SIGNING_SECRET},
    )
    yield made
    made.session.close()


def job(**overrides) -> JobSpec:
    values = dict(
        job_id=41,
        title="Write the spring newsletter",
        brief="600 words on the new menu.",
        acceptance_criteria=("mentions the opening hours", "one photo"),
        deliverable_kind="text",
        price_cents=4500,
        currency="EUR",
        due_date=date(2030, 3, 14),
        person=ANN,
        submission_url=LINK,
    )
    values.update(overrides)
    return JobSpec(**values)


def everything_said(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


def test_dispatch_posts_a_block_kit_message_slack_accepts(adapter, slack):
    receipt = adapter.dispatch(job(), "dsp_key1")
    assert receipt.external_id == "slack-dsp_key1"
    [message] = slack.messages
    assert slack.refused == []
    said = everything_said(message)
    for expected in ("Write the spring newsletter", "600 words on the new menu.",
                     "mentions the opening hours", "one photo", "2030-03-14", "45.00 EUR",
                     "<@U0ANN1234>"):  # fmt: skip
        assert expected in said, expected
    assert message["blocks"][0]["type"] == "header"
    found = buttons(message)
    assert found["Submit work"]["url"] == LINK
    assert found["Take it"]["value"] == found["Done"]["value"] == "slack-dsp_key1"
    assert LINK in message["text"]  # the notification text carries the link too


def test_a_handle_that_is_no_member_id_is_written_not_mentioned(adapter, slack):
    adapter.dispatch(job(person=PersonRef(name="Bo", slack_handle="@bo.smith")), "k")
    said = everything_said(slack.messages[0])
    assert "@bo.smith" in said and "<@" not in said


def test_owner_text_cannot_become_slack_markup(adapter, slack):
    adapter.dispatch(job(brief="Ping <!channel> & see <https://evil.example|here>"), "k")
    said = everything_said(slack.messages[0])
    assert "<!channel>" not in said and "<https://evil" not in said
    assert "&lt;!channel&gt; &amp; see" in said


def test_long_text_is_cut_to_what_block_kit_takes(adapter, slack):
    adapter.dispatch(job(title="T" * 400, brief="B" * 5000), "k")
    assert slack.refused == [] and len(slack.messages) == 1


def test_without_a_submission_link_there_is_no_link_button(adapter, slack):
    adapter.dispatch(job(submission_url="", person=None), "k")
    assert set(buttons(slack.messages[0])) == {"Take it", "Done"}


def test_a_repeat_post_is_a_second_message_about_the_same_order(adapter, slack):
    """Incoming webhooks have no idempotency: what stays the same is the order id."""
    first = adapter.dispatch(job(), "dsp_same")
    second = adapter.dispatch(job(), "dsp_same")
    assert first.external_id == second.external_id
    assert {buttons(m)["Take it"]["value"] for m in slack.messages} == {"slack-dsp_same"}


def test_notices_are_posted_with_the_link(adapter, slack):
    adapter.notify(
        Notice(
            key="n1",
            kind="revision",
            person=ANN,
            subject="Please revise",
            text="Shorter intro, please.",
            job_id=41,
            external_id="slack-dsp_key1",
            submission_url=LINK,
        )  # fmt: skip
    )
    [message] = slack.messages
    said = everything_said(message)
    assert "Please revise" in said and "Shorter intro, please." in said
    assert buttons(message)["Submit work"]["url"] == LINK
    assert buttons(message)["Done"]["value"] == "slack-dsp_key1"


def test_a_refusal_by_slack_is_permanent(adapter, slack, tmp_path):
    wrong = SlackAdapter(
        adapter.settings,
        credentials={"webhook_url": slack.base_url + "/services/T0/B0/revoked"},
    )
    with pytest.raises(AdapterError) as refused:
        wrong.dispatch(job(), "k")
    assert not isinstance(refused.value, RetryableAdapterError)
    assert refused.value.status == 404 and "no_service" in str(refused.value)


def test_a_url_that_is_not_allowed_is_never_called(slack, tmp_path):
    adapter = SlackAdapter(
        make_settings(tmp_path),  # no allow-list: the fake's loopback address is refused
        credentials={"webhook_url": slack.webhook_url, "signing_secret": SIGNING_SECRET},
    )
    with pytest.raises(AdapterError, match="loopback"):
        adapter.dispatch(job(), "k")
    with pytest.raises(AdapterError, match="loopback"):
        adapter.check()  # "Test connection" reports it, as any refusal
    assert slack.messages == [] and slack.refused == []


def test_the_webhook_url_is_checked_when_a_connection_is_saved(slack, tmp_path):
    settings = make_settings(tmp_path)
    for url in ("http://127.0.0.1:9/services/x", "ftp://hooks.example/x", "not a url",
                "http://169.254.169.254/latest"):  # fmt: skip
        with pytest.raises(UnsafeURL) as refused:
            SlackAdapter.validate_connection(settings, {"webhook_url": url}, {})
        assert refused.value.field == "webhook_url"
    allowed = make_settings(tmp_path, outbound_allowlist=(slack.hostport,))
    SlackAdapter.validate_connection(allowed, {"webhook_url": slack.webhook_url}, {})


def test_check_posts_nothing_and_says_so(adapter, slack):
    assert "nothing was posted" in adapter.check()
    assert slack.messages == []


# -- the fake is as strict as Slack ------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "word"),
    [
        ({}, "no_text"),
        ({"blocks": [{"type": "sparkles"}]}, "invalid_blocks"),
        ({"blocks": [{"type": "section"}]}, "invalid_blocks"),
        ({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]},
         "invalid_blocks"),
        ({"blocks": [{"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Go"},
             "url": "javascript:alert(1)"}]}]}, "invalid_blocks"),
        ({"blocks": [{"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "A"}, "action_id": "a"},
            {"type": "button", "text": {"type": "plain_text", "text": "B"}, "action_id": "a"},
        ]}]}, "invalid_blocks"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_slack_refuses(message, word):
    with pytest.raises(Invalid) as refused:
        check_message(message)
    assert refused.value.args[0] == word


def test_the_fake_answers_like_slack(slack):
    import requests

    assert requests.post(slack.webhook_url, json={"text": "hi"}, timeout=3).text == "ok"
    bad = requests.post(slack.webhook_url, data=b"{nope", timeout=3)
    assert (bad.status_code, bad.text) == (400, "invalid_payload")
    assert requests.post(slack.webhook_url, json={}, timeout=3).text == "no_text"


# -- the interactivity callback -----------------------------------------------------------------
def test_slacks_published_signature_vector():
    """From Slack's "Verifying requests from Slack" page: its example secret, request and
    signature (not computed here)."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
        b"398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    verify_signature("8f742231b10e8888abcd99yyyzzz85a5", headers, body, now=1531420618 + 10)
    with pytest.raises(SignatureError, match="off"):
        verify_signature("8f742231b10e8888abcd99yyyzzz85a5", headers, body, now=1531420618 + 301)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature("8f742231b10e8888abcd99yyyzzz85a4", headers, body, now=1531420618)


def pressed(adapter, slack, label: str, **kwargs):
    adapter.dispatch(job(), "dsp_key1")
    return slack.press(slack.messages[-1], label, **kwargs)


def test_take_it_is_taken_by_the_person_who_pressed(adapter, slack):
    headers, body = pressed(adapter, slack, "Take it", user="ann.writer")
    adapter.verify({k.lower(): v for k, v in headers.items()}, body)
    [event] = adapter.parse(headers, body)
    assert (event.kind, event.external_id, event.worker) == (
        EventKind.TAKEN, "slack-dsp_key1", "ann.writer")  # fmt: skip
    assert event.occurred_at.tzinfo is not None
    assert event.raw["actions"][0]["action_id"] == "dispatcher.take"


def test_done_is_a_delivery_saying_who_marked_it(adapter, slack):
    headers, body = pressed(adapter, slack, "Done", user="ann.writer")
    [event] = adapter.parse(headers, body)
    assert event.kind == EventKind.DELIVERED and event.external_id == "slack-dsp_key1"
    assert "ann.writer" in event.content and event.delivery_id


def test_each_press_has_its_own_stable_event_id(adapter, slack):
    headers, body = pressed(adapter, slack, "Take it")
    again_headers, again = slack.press(slack.messages[-1], "Take it")
    assert adapter.event_id(headers, body) == adapter.event_id(headers, body)
    assert adapter.event_id(headers, body) != adapter.event_id(again_headers, again)


def test_other_buttons_and_payloads_are_not_used(adapter, slack):
    headers, body = pressed(adapter, slack, "Submit work")  # the link button calls back too
    assert [e.kind for e in adapter.parse(headers, body)] == [EventKind.UNKNOWN]
    headers, body = slack.signed({"type": "view_submission", "trigger_id": "1.2.3", "view": {}})
    assert [e.kind for e in adapter.parse(headers, body)] == [EventKind.IGNORED]


@pytest.mark.parametrize(
    "body", [b"payload=not-json", b"nothing=here", b"payload=%5B1%5D", b"\xff\xfe"]
)
def test_a_malformed_callback_is_a_payload_error(adapter, body):
    with pytest.raises(PayloadError):
        adapter.parse({}, body)


def test_forged_and_old_callbacks_are_refused(adapter, slack):
    headers, body = pressed(adapter, slack, "Done", secret="not-the-signing-secret")
    with pytest.raises(SignatureError):
        adapter.verify(headers, body)
    headers, body = slack.press(slack.messages[-1], "Done", timestamp=int(time.time()) - 400)
    with pytest.raises(SignatureError):
        adapter.verify(headers, body)
    headers, body = slack.press(slack.messages[-1], "Done")
    with pytest.raises(SignatureError):
        adapter.verify(headers, body.replace(b"dispatcher.done", b"dispatcher.take"))
    with pytest.raises(SignatureError):
        adapter.verify({}, body)
