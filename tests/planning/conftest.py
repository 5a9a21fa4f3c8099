"""Fixtures for the planning pages and services: owners, goals, and a logged-in client."""

from __future__ import annotations

import pytest
from fakes.connections import connect_sandbox

from dispatcher.extensions import db, login_manager
from dispatcher.models import Owner
from dispatcher.planning import tree


@pytest.fixture
def user_loader(app):
    """The app's user loader; until the login module registers one, a plain one that loads
    the Owner by id (restored afterwards)."""
    saved = login_manager._user_callback
    if saved is None:
        login_manager.user_loader(lambda user_id: db.session.get(Owner, int(user_id)))
    yield
    login_manager._user_callback = saved


def make_owner(email: str, timezone: str = "UTC") -> Owner:
    owner = Owner(email=email, name=email.split("@")[0].title(), timezone=timezone)
    owner.set_password("correct horse battery")
    db.session.add(owner)
    db.session.commit()
    connect_sandbox(owner.id)  # delegating to "sandbox" means the owner's connection
    return owner


@pytest.fixture
def new_owner(app):
    """A factory: new_owner(email, timezone="UTC") -> Owner."""
    return make_owner


@pytest.fixture
def owner(app) -> Owner:
    return make_owner("ann@example.com")


@pytest.fixture
def other_owner(app) -> Owner:
    return make_owner("bob@example.com")


@pytest.fixture
def goal(owner):
    return tree.create_goal(owner.id, title="52 guest posts", target=52, budget_cents=10_000)


@pytest.fixture
def login(client, user_loader):
    """Log an owner into the test client through the session, the way Flask-Login keeps it."""

    def _login(owner: Owner):
        with client.session_transaction() as session:
            session["_user_id"] = str(owner.id)
            session["_fresh"] = True
        return client

    return _login


@pytest.fixture
def ann(login, owner):
    """The test client, logged in as `owner`."""
    return login(owner)


def titles(jobs) -> list[str]:
    return [j.title for j in jobs]
