"""Fixtures for the dispatch tests: the app pointed at a real sandbox marketplace on
loopback, an owner with a goal, and the sandbox's own records to check against."""

from __future__ import annotations

import pytest
from fakes.connections import connect_sandbox
from fakes.sandbox_fixture import sandbox  # noqa: F401

from dispatch.helpers import make_owner
from dispatcher.planning import tree


@pytest.fixture
def app_config(app_config, sandbox):  # noqa: F811
    return {
        **app_config,
        "sandbox_url": sandbox.base_url,
        "http_connect_timeout": 1.0,
        "http_read_timeout": 1.0,
        "dispatch_max_attempts": 4,
    }


@pytest.fixture
def owner(app, sandbox):  # noqa: F811
    owner = make_owner()
    connect_sandbox(owner.id, sandbox.base_url)
    return owner


@pytest.fixture
def goal(owner):
    return tree.create_goal(owner.id, title="52 guest posts", budget_cents=10_000)


@pytest.fixture
def paused(sandbox):  # noqa: F811
    """The sandbox with its simulated workers paused: nobody takes the orders, so no
    webhooks come back while a test looks at what was sent."""
    sandbox.control(pause_workers=True)
    return sandbox
