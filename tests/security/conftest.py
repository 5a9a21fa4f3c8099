"""Security tests use the page fixtures (owners signed up through the real forms)."""

from __future__ import annotations

from web.conftest import (  # noqa: F401  (fixtures, re-exported for pytest)
    ann,
    bob_client,
    client,
    delivered,
    goal,
    login,
    make_job,
    signup,
)
