from __future__ import annotations

import pytest
from fakes.connections import connect_sandbox

from dispatcher.extensions import db
from dispatcher.models import Owner
from dispatcher.planning import tree


@pytest.fixture
def owner(app):
    owner = Owner(email="ann@example.com", name="Ann")
    owner.set_password("correct horse")
    db.session.add(owner)
    db.session.commit()
    connect_sandbox(owner.id)
    return owner


@pytest.fixture
def goal(owner):
    return tree.create_goal(owner.id, title="52 guest posts", budget_cents=10_000, target=52)
