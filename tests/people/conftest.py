"""People-test fixtures: the page fixtures (Ann signed up through the forms, her sandbox
connection, Bob's own browser), Ann's API client, and a job of hers given to a person."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from web.conftest import (  # noqa: F401  (fixtures used by this package's tests)
    ann,
    bob_client,
    client,
    goal,
    login,
    make_job,
    page,
    reload,
    signup,
)

from adapters.sandbox import SandboxAdapter
from dispatcher.auth_tokens import issue_token
from dispatcher.models import Person
from dispatcher.people import directory


class TeammateSandbox(SandboxAdapter):
    """The sandbox, declared a teammate channel: a channel that needs a named person."""

    name = "mate"
    title = "Teammate test channel"
    teammate = True


@pytest.fixture
def api(app, ann):  # noqa: F811
    """Ann's API client (bearer token), beside her logged-in browser `client`."""
    other = app.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(ann, 'tests').secret}"
    return other


@pytest.fixture
def person(ann) -> Callable[..., Person]:  # noqa: F811
    def _person(name: str = "Sam Writer", **fields) -> Person:
        fields.setdefault("email", f"{name.split()[0].lower()}@example.com")
        return directory.create(ann.id, name=name, **fields)

    return _person
