"""The sandbox marketplace itself, through Flask's test client (its background loops are not
started: tests move the simulated workers with `workers.step` so every case is exact)."""

from __future__ import annotations

import time

import pytest

from dispatcher.sandbox import create_sandbox_app, workers
from dispatcher.sandbox.app import EXTENSION
from dispatcher.sandbox.options import OptionsError

SECRET = "whsec_c2FuZGJveC10ZXN0LXNlY3JldC1mb3ItZGlzcGF0Y2hlcg=="


def order_body(**overrides):
    body = {
        "title": "Write a guest post",
        "brief": "800 words",
        "acceptance_criteria": ["on topic"],
        "deliverable_kind": "text",
        "price_cents": 1500,
        "currency": "USD",
        "assignments": 1,
        "callback_url": "",
        "client_ref": "job-1",
        "due_date": None,
    }
    body.update(overrides)
    return body


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "sandbox.db"


@pytest.fixture
def make_app(db_path):
    apps = []

    def _make(**options):
        app = create_sandbox_app(
            db_path, **{"take_delay": 0, "deliver_delay": 0, "seed": 7, **options}
        )
        apps.append(app)
        return app

    yield _make
    for app in apps:
        app.extensions[EXTENSION].close()


@pytest.fixture
def app(make_app):
    return make_app()


def authed(app, like=None):
    """A client of one sandbox account (a new one, or `like`'s): every call carries its key."""
    client = app.test_client()
    if like is not None:
        client.environ_base["HTTP_AUTHORIZATION"] = like.environ_base["HTTP_AUTHORIZATION"]
        return client
    key = client.post("/accounts", json={"name": "tests"}).get_json()["api_key"]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


@pytest.fixture
def client(app):
    return authed(app)


@pytest.fixture
def market(app):
    return app.extensions[EXTENSION]


def post_order(client, key="key-1", **overrides):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/orders", json=order_body(**overrides), headers=headers)


def delivered_order(client, market, **overrides):
    order = post_order(client, **overrides).get_json()
    workers.step(market)  # taken
    workers.step(market)  # delivered
    return client.get(f"/orders/{order['id']}").get_json()


# -- creating orders --------------------------------------------------------------------------


def test_create_order_returns_201_and_the_documented_shape(client):
    response = post_order(client)
    assert response.status_code == 201
    order = response.get_json()
    assert order["id"].startswith("ord_")
    assert order["status"] == "open"
    assert order["url"] == f"http://localhost/orders/{order['id']}"
    assert order["idempotency_key"] == "key-1"
    assert order["client_ref"] == "job-1"
    assert order["title"] == "Write a guest post"
    assert (order["price_cents"], order["currency"], order["assignments"]) == (1500, "USD", 1)
    assert order["created_at"].endswith("Z")
    assert order["submissions"] == []
    assert client.get(f"/orders/{order['id']}").get_json() == order


def test_missing_idempotency_key_is_400_problem_json(client, market):
    response = post_order(client, key=None)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert market.stats()["orders"] == 0


def test_validation_errors_are_422_per_field(client, market):
    response = client.post(
        "/orders",
        json=order_body(
            title="",
            price_cents=-1,
            currency="usd",
            assignments=0,
            deliverable_kind="video",
            callback_url="ftp://x",
            due_date="next week",
            acceptance_criteria="not a list",
            colour="red",
        ),
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {
        "title",
        "price_cents",
        "currency",
        "assignments",
        "deliverable_kind",
        "callback_url",
        "due_date",
        "acceptance_criteria",
        "colour",
    }
    assert errors["colour"] == "unknown field"
    assert market.stats()["orders"] == 0


def test_missing_required_fields_and_non_object_body(client):
    response = client.post("/orders", json={}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "title": "is required",
        "price_cents": "is required",
        "currency": "is required",
    }
    response = client.post("/orders", data="nope", headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"body": "must be a JSON object"}


def test_same_key_same_body_replays_the_same_order(client, market):
    first = post_order(client)
    # the same request with its keys in another order is the same request
    reordered = dict(reversed(list(order_body().items())))
    again = client.post("/orders", json=reordered, headers={"Idempotency-Key": "key-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    stats = market.stats()
    assert stats["orders"] == 1 and stats["orders_by_key"] == {"key-1": 1}
    assert stats["duplicate_orders"] == 0


def test_same_key_different_body_is_refused(client, market):
    post_order(client)
    response = post_order(client, price_cents=9999)
    assert response.status_code == 422
    assert response.get_json()["detail"] == "idempotency key reused with a different request"
    assert market.stats()["orders"] == 1


def test_look_up_by_key(client):
    order = post_order(client).get_json()
    assert client.get("/orders?idempotency_key=key-1").get_json() == {"orders": [order]}
    assert client.get("/orders?idempotency_key=other").get_json() == {"orders": []}


def test_unknown_order_and_unknown_route_are_404_problem_json(client):
    response = client.get("/orders/ord_nope")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "no order ord_nope"
    assert client.get("/no/such/page").status_code == 404
    assert client.delete("/orders").status_code == 405


# -- fault knobs ------------------------------------------------------------------------------


def test_fail_rate_answers_503_without_creating(make_app):
    client = authed(make_app(fail_rate=1.0))
    response = post_order(client)
    assert response.status_code == 503
    assert client.get("/orders?idempotency_key=key-1").get_json() == {"orders": []}


def test_fail_after_create_creates_then_answers_503(make_app):
    app = make_app(fail_after_create_rate=1.0)
    client = authed(app)
    assert post_order(client).status_code == 503
    assert post_order(client).status_code == 503  # the retry replays, still no second order
    found = client.get("/orders?idempotency_key=key-1").get_json()["orders"]
    assert len(found) == 1
    stats = app.extensions[EXTENSION].stats()
    assert stats["orders"] == 1 and stats["duplicate_orders"] == 0
    assert stats["counters"]["fault_failed_after_create"] == 2


def test_rate_limit_answers_429_with_retry_after(make_app):
    client = authed(make_app(rate_limit_rate=1.0))
    response = post_order(client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert client.get("/_stats").get_json()["orders"] == 0


def test_stall_sleeps_after_creating(make_app):
    client = authed(make_app(stall_rate=1.0, stall_seconds=0.15))
    started = time.monotonic()
    response = post_order(client)
    assert time.monotonic() - started >= 0.15
    assert response.status_code == 201


def test_control_reads_and_changes_knobs_at_runtime(client):
    assert client.get("/_control").get_json()["fail_rate"] == 0.0
    response = client.post("/_control", json={"fail_rate": 1, "pause_workers": True})
    assert response.status_code == 200
    assert response.get_json()["fail_rate"] == 1.0
    assert response.get_json()["pause_workers"] is True
    assert post_order(client).status_code == 503
    client.post("/_control", json={"fail_rate": 0})
    assert post_order(client).status_code == 201


def test_control_refuses_unknown_and_out_of_range_knobs_all_or_nothing(client):
    response = client.post(
        "/_control", json={"fail_rat": 1, "stall_rate": 2, "pause_workers": "yes", "take_delay": 3}
    )
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"fail_rat", "stall_rate", "pause_workers"}
    assert client.get("/_control").get_json()["take_delay"] == 0  # nothing applied


def test_bad_options_at_start_fail_fast(db_path):
    with pytest.raises(OptionsError, match="fail_rate"):
        create_sandbox_app(db_path, fail_rate=3)


def test_seeded_faults_are_repeatable(tmp_path):
    def statuses(path):
        app = create_sandbox_app(path, fail_rate=0.5, seed=42)
        client = authed(app)
        try:
            return [post_order(client, key=f"k{i}").status_code for i in range(20)]
        finally:
            app.extensions[EXTENSION].close()

    first = statuses(tmp_path / "a.db")
    assert first == statuses(tmp_path / "b.db")
    assert {201, 503} == set(first)


# -- persistence -------------------------------------------------------------------------------


def test_orders_survive_a_restart_on_the_same_file(make_app, db_path):
    first = make_app()
    client = authed(first)
    order = delivered_order(client, first.extensions[EXTENSION])
    first.extensions[EXTENSION].close()

    second = authed(make_app(), like=client)
    assert second.get(f"/orders/{order['id']}").get_json() == order
    replay = post_order(second)  # the key is still known after the restart
    assert replay.status_code == 200 and replay.get_json()["id"] == order["id"]
    assert second.get("/_stats").get_json()["orders"] == 1
    assert len(second.get(f"/orders/{order['id']}/events").get_json()["events"]) == 2


# -- simulated workers ---------------------------------------------------------------------------


def test_workers_take_then_deliver_one_submission_per_assignment(client, market):
    order = post_order(client, assignments=2, deliverable_kind="url").get_json()
    workers.step(market)
    assert client.get(f"/orders/{order['id']}").get_json()["status"] == "taken"
    workers.step(market)
    order = client.get(f"/orders/{order['id']}").get_json()
    assert order["status"] == "delivered"
    assert len(order["submissions"]) == 2
    sub = order["submissions"][0]
    assert sub["id"].startswith("sub_") and sub["status"] == "submitted"
    assert sub["content"] == "Delivered: Write a guest post"
    assert sub["url"].endswith(f"/deliveries/{sub['id']}")
    assert client.get(f"/deliveries/{sub['id']}").status_code == 200
    events = client.get(f"/orders/{order['id']}/events").get_json()["events"]
    assert [e["type"] for e in events] == ["order.taken"] * 2 + ["order.delivered"] * 2
    delivered = events[-1]
    assert delivered["id"].startswith("evt_")
    assert set(delivered["data"]) >= {
        "order_id",
        "client_ref",
        "submission_id",
        "worker_id",
        "content",
        "url",
        "status",
    }
    assert delivered["data"]["client_ref"] == "job-1"


def test_delays_are_respected(make_app):
    app = make_app(take_delay=30, deliver_delay=30)
    market = app.extensions[EXTENSION]
    order = post_order(authed(app)).get_json()
    assert workers.step(market) == 0
    assert workers.step(market, now=time.time() + 31) == 1
    assert market.get_order(order["id"])["status"] == "taken"
    assert workers.step(market, now=time.time() + 32) == 0
    assert workers.step(market, now=time.time() + 62) == 1
    assert market.get_order(order["id"])["status"] == "delivered"


def test_paused_workers_do_nothing(client, market):
    order = post_order(client).get_json()
    market.set_options({"pause_workers": True})
    assert workers.step(market) == 0
    market.set_options({"pause_workers": False})
    workers.step(market)
    assert market.get_order(order["id"])["status"] == "taken"


def test_withdrawn_work_goes_back_to_open(client, market):
    market.set_options({"withdraw_rate": 1.0})
    order = post_order(client).get_json()
    workers.step(market)
    workers.step(market)
    assert market.get_order(order["id"])["status"] == "open"
    types = [e["type"] for e in market.events(order["id"])]
    assert types == ["order.taken", "order.withdrawn"]


def test_untaken_orders_expire_even_when_workers_are_paused(client, market):
    market.set_options({"pause_workers": True, "expire_after": 0})
    order = post_order(client).get_json()
    workers.step(market)
    assert market.get_order(order["id"])["status"] == "expired"
    assert [e["type"] for e in market.events(order["id"])] == ["order.expired"]
    assert client.post(f"/orders/{order['id']}/cancel").status_code == 409


# -- cancel and reviews -------------------------------------------------------------------------


def test_cancel_is_idempotent_and_stops_the_workers(client, market):
    order = post_order(client).get_json()
    first = client.post(f"/orders/{order['id']}/cancel")
    again = client.post(f"/orders/{order['id']}/cancel")
    assert first.status_code == again.status_code == 200
    assert first.get_json()["status"] == "cancelled" == again.get_json()["status"]
    assert workers.step(market) == 0
    assert client.post("/orders/ord_nope/cancel").status_code == 404


def test_accept_pays_once_completes_the_order_and_emits_paid(client, market):
    order = delivered_order(client, market)
    sub = order["submissions"][0]
    url = f"/orders/{order['id']}/submissions/{sub['id']}/accept"
    first = client.post(url, json={"payout_cents": 1500})
    again = client.post(url, json={"payout_cents": 1500})
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert first.get_json()["status"] == "completed"
    assert first.get_json()["submissions"][0]["status"] == "accepted"
    assert first.get_json()["submissions"][0]["payout_cents"] == 1500
    stats = market.stats()
    assert (stats["payments"], stats["paid_cents"], stats["double_payments"]) == (1, 1500, 0)
    paid = market.events(order["id"])[-1]
    assert paid["type"] == "submission.paid"
    assert paid["data"]["submission_id"] == sub["id"]
    assert paid["data"]["payout_cents"] == 1500
    # a different payout for the same submission is a conflict, not a second payment
    assert client.post(url, json={"payout_cents": 99}).status_code == 409
    assert client.post(f"/orders/{order['id']}/cancel").status_code == 409
    assert market.stats()["payments"] == 1


def test_order_completes_only_when_every_assignment_is_accepted(client, market):
    order = delivered_order(client, market, assignments=2)
    subs = order["submissions"]
    base = f"/orders/{order['id']}/submissions"
    assert client.post(f"{base}/{subs[0]['id']}/accept", json={"payout_cents": 10}).get_json()[
        "status"
    ] == ("delivered")
    done = client.post(f"{base}/{subs[1]['id']}/accept", json={"payout_cents": 10}).get_json()
    assert done["status"] == "completed"
    assert market.stats()["payments"] == 2


def test_review_inputs_are_validated(client, market):
    order = delivered_order(client, market)
    base = f"/orders/{order['id']}/submissions/{order['submissions'][0]['id']}"
    assert client.post(f"{base}/accept", json={}).status_code == 422
    assert client.post(f"{base}/accept", json={"payout_cents": "10"}).status_code == 422
    assert client.post(f"{base}/accept", json={"payout_cents": -1}).status_code == 422
    assert client.post(f"{base}/reject", json={"reason": " "}).status_code == 422
    assert client.post(f"{base}/revision", json={}).status_code == 422
    assert client.post(f"{base}/revision", data="x").status_code == 422
    missing = f"/orders/{order['id']}/submissions/sub_nope/accept"
    assert client.post(missing, json={"payout_cents": 1}).status_code == 404


def test_reject_is_idempotent_and_final(client, market):
    order = delivered_order(client, market)
    base = f"/orders/{order['id']}/submissions/{order['submissions'][0]['id']}"
    first = client.post(f"{base}/reject", json={"reason": "off topic"})
    again = client.post(f"{base}/reject", json={"reason": "off topic"})
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert first.get_json()["submissions"][0]["status"] == "rejected"
    assert first.get_json()["submissions"][0]["note"] == "off topic"
    assert client.post(f"{base}/accept", json={"payout_cents": 1}).status_code == 409
    assert market.stats()["payments"] == 0


def test_revision_brings_a_new_submission_once(client, market):
    order = delivered_order(client, market)
    sub = order["submissions"][0]
    base = f"/orders/{order['id']}/submissions/{sub['id']}"
    first = client.post(f"{base}/revision", json={"feedback": "more sources"})
    again = client.post(f"{base}/revision", json={"feedback": "more sources"})
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert first.get_json()["submissions"][0]["status"] == "revision_requested"
    workers.step(market)
    workers.step(market)
    order = market.get_order(order["id"])
    assert [s["status"] for s in order["submissions"]] == ["revision_requested", "submitted"]
    assert "more sources" in order["submissions"][1]["content"]
    assert order["status"] == "delivered"
    # the old submission can no longer be accepted; the new one can
    assert client.post(f"{base}/accept", json={"payout_cents": 5}).status_code == 409
    new = order["submissions"][1]["id"]
    accept = f"/orders/{order['id']}/submissions/{new}/accept"
    assert client.post(accept, json={"payout_cents": 5}).status_code == 200
    types = [e["type"] for e in market.events(order["id"])]
    assert types == ["order.taken", "order.delivered", "order.delivered", "submission.paid"]


def test_home_page_lists_orders_with_escaping(client):
    post_order(client, title="<script>alert(1)</script>")
    page = client.get("/")
    assert page.status_code == 200
    assert b"&lt;script&gt;" in page.data and b"<script>" not in page.data


def test_orders_need_an_account_key(app):
    anonymous = app.test_client()
    response = anonymous.post("/orders", json=order_body(), headers={"Idempotency-Key": "k"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    wrong = anonymous.get("/orders", headers={"Authorization": "Bearer sbx_guessed"})
    assert wrong.status_code == 401


def test_an_account_sees_only_its_own_orders(app, client):
    order = post_order(client, key="mine").get_json()
    other = app.test_client()
    key = other.post("/accounts", json={"name": "other"}).get_json()["api_key"]
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    assert other.get(f"/orders/{order['id']}").status_code == 404
    assert other.post(f"/orders/{order['id']}/cancel").status_code == 404
    assert other.get("/orders", query_string={"idempotency_key": "mine"}).json == {"orders": []}
    assert client.get(f"/orders/{order['id']}").status_code == 200


def test_the_account_registers_a_webhook_and_never_shows_key_or_secret(app):
    client = app.test_client()
    created = client.post("/accounts", json={"name": "shop"}).get_json()
    auth = {"Authorization": f"Bearer {created['api_key']}"}
    secret = "whsec_" + "c2VjcmV0LWZvci10aGUtc2hvcC1hY2NvdW50LTEyMw=="
    response = client.put(
        "/account/webhook", json={"url": "http://127.0.0.1:9/hook", "secret": secret}, headers=auth
    )
    assert response.status_code == 200
    shown = client.get("/account", headers=auth).get_data(as_text=True)
    assert "webhook_secret_set" in shown and secret not in shown
    assert created["api_key"] not in shown
    bad = client.put("/account/webhook", json={"secret": "plain"}, headers=auth)
    assert bad.status_code == 422
