"""Helpers the API tests share."""

from __future__ import annotations

from fakes.connections import connect_sandbox

from dispatcher.extensions import db
from dispatcher.models import Owner

PASSWORD = "correct horse battery"


def make_owner(email: str) -> Owner:
    owner = Owner(email=email, name=email.split("@")[0].title())
    owner.set_password(PASSWORD)
    db.session.add(owner)
    db.session.commit()
    connect_sandbox(owner.id)  # delegating to "sandbox" means the owner's connection
    return owner


def assert_problem(response, status: int) -> dict:
    """The answer is problem+json with this status; returns the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"]
    return body
