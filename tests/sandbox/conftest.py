"""The sandbox marketplace fixtures (tests/fakes/sandbox_fixture.py) for these tests."""

from fakes.sandbox_fixture import sandbox, sandbox_adapter, webhook_receiver  # noqa: F401
