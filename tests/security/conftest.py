"""Security tests use the page fixtures (owners signed up through the real forms)."""

from __future__ import annotations

from fakes.smtp import inbox, smtp_port  # noqa: F401  (fixtures: a real SMTP server)
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
