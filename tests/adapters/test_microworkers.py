"""The Microworkers adapter against the local fake of API v2 over real HTTP: campaigns made
once per key, slots polled page by page, ratings with their bounds, the platform's errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from fakes.microworkers import API_KEY, FakeMicroworkers
from fakes.sandbox_fixture import make_settings

from adapters.base import DeliveryRef, EventKind, JobSpec
from adapters.microworkers import MicroworkersAdapter
from dispatcher.errors import AdapterError, RetryableAdapterError


@pytest.fixture
def fake():
    running = FakeMicroworkers().start()
    yield running
    running.stop()


@pytest.fixture
def adapter(fake, tmp_path):
    made = MicroworkersAdapter(
        make_settings(tmp_path),
        credentials={"api_key": API_KEY},
        options={"base_url": fake.url, "template_id": "tpl1", "ttr_days": 3},
    )
    yield made
    made.session.close()


def spec(**overrides) -> JobSpec:
    values = {
        "job_id": 9,
        "title": "Find the email of a shop owner",
        "brief": "One email per position",
        "acceptance_criteria": ("a working address",),
        "deliverable_kind": "text",
        "price_cents": 50,
        "currency": "USD",
        "assignments": 30,
        "due_date": date(2030, 1, 1),
    }
    values.update(overrides)
    return JobSpec(**values)


def body(received) -> dict:
    return json.loads(received.body)


def test_dispatch_creates_one_campaign_with_the_documented_shape(adapter, fake):
    receipt = adapter.dispatch(spec(), "dsp_key1")
    [create] = fake.calls("POST", "/basic-campaigns")
    sent = body(create)
    assert create.headers["microworkersapikey"] == API_KEY
    assert sent["availablePositions"] == 30
    assert sent["paymentPerTask"] == 0.5
    assert sent["ttr"] == 3
    assert sent["title"].endswith("[dsp_key1]")
    assert sent["internalTemplate"]["id"] == "tpl1"
    assert "a working address" in sent["description"]
    assert receipt.external_id in fake.campaigns


def test_a_second_dispatch_under_the_key_adopts_the_first_campaign(adapter, fake):
    first = adapter.dispatch(spec(), "dsp_key2")
    second = adapter.dispatch(spec(), "dsp_key2")
    assert first.external_id == second.external_id
    assert len(fake.campaigns) == 1
    assert adapter.find("dsp_key2").external_id == first.external_id
    assert adapter.find("dsp_other") is None


def test_find_pages_through_the_campaign_list(adapter, fake):
    target = adapter.dispatch(spec(), "dsp_old")
    for n in range(120):  # newer campaigns push the one we want to page 2 (100 a page)
        adapter.dispatch(spec(title=f"filler {n}"), f"dsp_fill{n}")
    before = len(fake.calls("GET", "/basic-campaigns"))
    assert adapter.find("dsp_old").external_id == target.external_id
    assert len(fake.calls("GET", "/basic-campaigns")) - before == 2  # two pages read
    assert len(fake.campaigns) == 121


def test_find_reads_only_recent_campaigns(adapter, fake):
    old = adapter.dispatch(spec(), "dsp_ancient")
    fake.campaigns[old.external_id]["created"] = "2020-01-01T00:00:00+00:00"
    assert adapter.find("dsp_ancient") is None  # outside the window: not read at all
    fresh = adapter.dispatch(spec(), "dsp_fresh")
    assert adapter.find("dsp_fresh").external_id == fresh.external_id


def test_fewer_than_30_positions_is_refused_for_good_before_any_call(adapter, fake):
    with pytest.raises(AdapterError) as caught:
        adapter.dispatch(spec(assignments=3), "dsp_small")
    assert not isinstance(caught.value, RetryableAdapterError)
    assert "at least 30" in str(caught.value)
    assert fake.requests == []


def test_the_fake_refuses_what_the_docs_refuse(adapter, fake):
    """The fake's own checks: without them the adapter's tests would prove nothing."""
    good = {
        "title": "t [k]",
        "description": "d",
        "categoryId": "10",
        "availablePositions": 30,
        "minutesToFinish": 10,
        "paymentPerTask": 0.1,
        "ttr": 7,
        "internalTemplate": {"id": "x"},
    }
    url = fake.url + "/basic-campaigns"
    headers = {"MicroworkersApiKey": API_KEY}
    for change in (
        {"availablePositions": 29},
        {"ttr": 0},
        {"ttr": 31},
        {"externalTemplate": {"url": "https://x"}},
    ):
        response = adapter.session.post(url, json={**good, **change}, headers=headers)
        assert response.status_code == 400, change
        assert response.json()["code"] == "ValidationFailed"
    assert adapter.session.post(url, json=good).status_code == 401
    assert adapter.session.post(url, json=good, headers=headers).status_code == 201


def test_a_wrong_key_is_a_permanent_refusal(adapter, fake, tmp_path):
    wrong = MicroworkersAdapter(
        make_settings(tmp_path),
        credentials={"api_key": "nope"},
        options={"base_url": fake.url, "template_id": "tpl1"},
    )
    with pytest.raises(AdapterError) as caught:
        wrong.check()
    assert caught.value.status == 401
    assert not isinstance(caught.value, RetryableAdapterError)
    assert "Microworkers answered" in adapter.check()


def test_a_503_is_retryable(adapter, fake):
    fake.fail_next = [503]
    with pytest.raises(RetryableAdapterError):
        adapter.poll("nothing")


def test_poll_pages_slots_with_the_platforms_token(adapter, fake):
    campaign = adapter.dispatch(spec(assignments=150), "dsp_poll").external_id
    slots = fake.take(campaign, 130)
    fake.submit(slots[0], "owner@shop.example")
    first = adapter.poll(campaign)
    assert len(first.events) == 100 and first.next_cursor
    second = adapter.poll(campaign, first.next_cursor)
    assert len(second.events) == 30 and second.next_cursor is None
    kinds = {e.assignment_ref: e.kind for e in first.events + second.events}
    assert kinds[slots[0]] == EventKind.DELIVERED
    assert kinds[slots[1]] == EventKind.TAKEN
    delivered = next(e for e in first.events if e.assignment_ref == slots[0])
    assert delivered.content == "owner@shop.example"
    assert delivered.external_id == campaign
    assert delivered.raw["id"] == slots[0]


def test_event_ids_are_stable_until_the_slot_changes(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_ids").external_id
    [slot] = fake.take(campaign, 1)
    taken = adapter.poll(campaign).events[0].event_id
    assert adapter.poll(campaign).events[0].event_id == taken
    fake.submit(slot, "first try")
    delivered = adapter.poll(campaign).events[0]
    assert delivered.event_id != taken
    adapter.request_revision(DeliveryRef(campaign, delivered.delivery_id), "add the source")
    fake.submit(slot, "second try")
    again = adapter.poll(campaign).events[0]
    assert again.kind == EventKind.DELIVERED
    assert again.event_id != delivered.event_id  # a resubmission is a new change...
    assert again.delivery_id != delivered.delivery_id  # ...and a new submission


def test_accept_rates_ok_and_pays_a_bonus_above_the_price(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_ok").external_id
    a, b = fake.take(campaign, 2)
    fake.submit(a, "x")
    fake.submit(b, "y")
    adapter.accept(DeliveryRef(campaign, f"{a}@t"), 50)
    adapter.accept(DeliveryRef(campaign, f"{b}@t"), 75)
    rates = [body(r) for r in fake.calls("PUT", "/rate")]
    assert rates == [{"rating": "OK"}, {"rating": "OK", "bonus": 0.25}]
    assert adapter.decision(DeliveryRef(campaign, f"{b}@t")).payout_cents == 75


def test_bonus_bounds_and_a_lower_payout_are_refused_before_sending(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_bonus").external_id
    [slot] = fake.take(campaign, 1)
    fake.submit(slot, "x")
    ref = DeliveryRef(campaign, slot)
    for payout in (51, 151, 49):  # bonus 1 cent (<10 %), 101 cents (>200 %), under the price
        with pytest.raises(AdapterError):
            adapter.accept(ref, payout)
    assert fake.calls("PUT", "/rate") == []
    adapter.accept(ref, 150)  # exactly 200 %
    assert body(fake.calls("PUT", "/rate")[0]) == {"rating": "OK", "bonus": 1.0}


def test_the_fake_enforces_the_bonus_bounds_itself(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_fakebonus").external_id
    [slot] = fake.take(campaign, 1)
    fake.submit(slot, "x")
    url = f"{fake.url}/slots/{slot}/rate"
    headers = {"MicroworkersApiKey": API_KEY}
    too_high = adapter.session.put(url, json={"rating": "OK", "bonus": 1.01}, headers=headers)
    assert (too_high.status_code, too_high.json()["code"]) == (400, "BonusAmountTooHigh")
    too_low = adapter.session.put(url, json={"rating": "OK", "bonus": 0.04}, headers=headers)
    assert (too_low.status_code, too_low.json()["code"]) == (400, "BonusAmountTooLow")
    no_comment = adapter.session.put(url, json={"rating": "NOK"}, headers=headers)
    assert no_comment.status_code == 400


def test_reject_and_revise_send_the_comment(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_nok").external_id
    a, b = fake.take(campaign, 2)
    fake.submit(a, "x")
    fake.submit(b, "y")
    adapter.reject(DeliveryRef(campaign, a), "not an email")
    adapter.request_revision(DeliveryRef(campaign, b), "add the source")
    assert [body(r) for r in fake.calls("PUT", "/rate")] == [
        {"rating": "NOK", "comment": "not an email"},
        {"rating": "REVISE", "comment": "add the source"},
    ]
    assert adapter.decision(DeliveryRef(campaign, a)).decision == "reject"
    assert adapter.decision(DeliveryRef(campaign, b)).decision == "revise"


def test_rating_twice_is_refused_and_decision_says_what_is_held(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_twice").external_id
    [slot] = fake.take(campaign, 1)
    fake.submit(slot, "x")
    ref = DeliveryRef(campaign, slot)
    assert adapter.decision(ref) is None
    adapter.accept(ref, 50)
    with pytest.raises(AdapterError) as caught:
        adapter.reject(ref, "changed my mind")
    assert caught.value.status == 400 and "SlotAlreadyRated" in caught.value.body
    held = adapter.decision(ref)
    assert (held.decision, held.payout_cents) == ("accept", 50)


def test_auto_approval_after_ttr_is_reported_as_approved(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_auto").external_id
    [slot] = fake.take(campaign, 1)
    fake.submit(slot, "x", finished=datetime.now(UTC) - timedelta(days=4))
    assert fake.auto_approve() == [slot]  # ttr is 3 days
    [event] = adapter.poll(campaign).events
    assert event.kind == EventKind.APPROVED
    assert event.payout_cents == 50
    assert event.assignment_ref == slot


def test_rejected_expired_and_unknown_statuses(adapter, fake):
    campaign = adapter.dispatch(spec(), "dsp_words").external_id
    a, b, c = fake.take(campaign, 3)
    fake.submit(a, "x")
    adapter.reject(DeliveryRef(campaign, a), "no")
    fake.expire(b)
    fake.set_status(c, "TELEPORTED")
    kinds = {e.assignment_ref: (e.kind, e.platform_status) for e in adapter.poll(campaign).events}
    assert kinds == {
        a: (EventKind.REJECTED, "NOK"),
        b: (EventKind.RETURNED, "EXPIRED"),
        c: (EventKind.UNKNOWN, "TELEPORTED"),
    }


def test_fee_is_seven_and_a_half_percent_rounded_up(adapter):
    assert adapter.fee_cents(1000) == 75
    assert adapter.fee_cents(50) == 4  # 3.75 cents
