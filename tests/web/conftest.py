"""Page-test fixtures: sign up and log in through the real forms, a second owner with their
own browser (cookie jar), and ways to put a goal's jobs into any state the services allow."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fakes.connections import connect_sandbox
from fakes.work import deliver
from flask.testing import FlaskClient
from sqlalchemy import select

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Delivery, Goal, MicroJob, Owner
from dispatcher.planning import tree

PASSWORD = "correct horse battery"


class FreshContextClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    The `app` fixture keeps one app context pushed for the whole test, and a request reuses a
    pushed context: `g` (where Flask-Login caches the current user) and the database session
    would then be shared by every request of the test, whoever's browser sends it.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app) -> FlaskClient:
    app.test_client_class = FreshContextClient
    return app.test_client()


def signup_with(
    client: FlaskClient,
    email: str = "ann@example.com",
    password: str = PASSWORD,
    *,
    name: str = "Ann",
    confirm: str | None = None,
):
    """Fill in and send the sign-up form; returns the response (not followed)."""
    return client.post(
        "/signup",
        data={
            "email": email,
            "name": name,
            "password": password,
            "confirm": password if confirm is None else confirm,
        },
    )


def login_with(client: FlaskClient, email: str = "ann@example.com", password: str = PASSWORD):
    """Fill in and send the log-in form; returns the response (not followed)."""
    return client.post("/login", data={"email": email, "password": password})


@pytest.fixture
def signup(client) -> Callable:
    """signup(client=None, email=..., password=..., name=..., confirm=...)."""

    def _signup(c: FlaskClient | None = None, **kwargs):
        return signup_with(c or client, **kwargs)

    return _signup


@pytest.fixture
def login(client) -> Callable:
    """login(client=None, email=..., password=...)."""

    def _login(c: FlaskClient | None = None, **kwargs):
        return login_with(c or client, **kwargs)

    return _login


def owner_by_email(email: str) -> Owner:
    return db.session.scalars(select(Owner).where(Owner.email == email)).one()


@pytest.fixture
def ann(client) -> Owner:
    """Ann, signed up through the form; `client` is logged in as her."""
    response = signup_with(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    owner = owner_by_email("ann@example.com")
    connect_sandbox(owner.id)  # delegating to "sandbox" means her sandbox connection
    return owner


@pytest.fixture
def bob_client(app, client, ann) -> FlaskClient:
    """Bob's own browser, logged in as Bob (a different owner from Ann)."""
    other = app.test_client()
    response = signup_with(other, "bob@example.com", name="Bob")
    assert response.status_code == 303
    return other


@pytest.fixture
def goal(ann) -> Goal:
    return tree.create_goal(
        ann.id, title="52 guest posts", metric_name="posts published", baseline=0, target=52,
        budget_cents=10_000, currency="USD",
    )  # fmt: skip


@pytest.fixture
def make_job(goal) -> Callable[..., MicroJob]:
    def _make(title: str = "Write a guest post", **fields) -> MicroJob:
        return tree.add_job(goal, title=title, **fields)

    return _make


def page(response) -> str:
    return response.get_data(as_text=True)


def reload(row):
    """The row as the database has it now (the views committed in another session state)."""
    db.session.expire_all()
    return db.session.get(type(row), row.id)


@pytest.fixture
def delivered(make_job) -> Callable[..., Delivery]:
    """A delegated job dispatched through the service, moved to delivered by the lifecycle the
    way the send task and a webhook would, with a Delivery row waiting for review."""

    def _delivered(title: str = "Write a guest post", price_cents: int = 2_500) -> Delivery:
        job = make_job(title, mode="delegate", channel="sandbox", price_cents=price_cents)
        dispatch = dispatch_service.dispatch_job(job)
        return deliver(
            dispatch,
            f"sub-{job.id}",
            worker="w42",
            content="Here is the post: 900 words on link building.",
            url="https://example.com/draft/1",
        )

    return _delivered
