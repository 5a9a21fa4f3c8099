"""Which connection a webhook URL belongs to, remembered per process between webhooks.

Why: looking the connection up cost every webhook a statement of its own, a round trip on
PostgreSQL (about a quarter of intake's time there, `bench/profile_intake.py`). A remembered
answer is only a guess, checked where it matters: the group's INSERT stores a row only if
its connection still has the version and webhook path the request was verified against
(`group_commit`). A rotated secret, changed options or a deleted connection bump the
version or remove the row, so the INSERT turns the webhook away and `take` looks the
connection up afresh and starts over: the change holds from the very next webhook, in every
process, with nothing to invalidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from adapters.base import Adapter
from dispatcher.connections import CACHE, adapter_for_webhook

_EXT_KEY = "dispatcher.webhook_lookup"


@dataclass(frozen=True)
class Found:
    adapter: Adapter
    #: (version, webhook path) of the connection the adapter was built from
    guard: tuple[int, str]
    #: read from the database for this request (False: remembered from an earlier one)
    fresh: bool


def find(adapter_name: str, path: str, *, fresh: bool = False) -> Found | None:
    """The adapter for /webhooks/<adapter_name>/<path>, remembered unless `fresh`; None if no
    connection has that URL (never remembered: a new connection may take it)."""
    known: dict[tuple[str, str], Found] = current_app.extensions.setdefault(_EXT_KEY, {})
    if not fresh:
        hit = known.get((adapter_name, path))
        if hit is not None:
            return hit
    adapter = adapter_for_webhook(adapter_name, path)
    if adapter is None:
        known.pop((adapter_name, path), None)
        return None
    # the stamp the adapter was built from, not a second read that may have moved on
    stamp, cached = current_app.extensions[CACHE].get(adapter.connection_id, (None, None))
    if cached is not adapter:  # rebuilt by another thread meanwhile: let the INSERT refuse it
        stamp = (-1, "")
    found = Found(adapter, stamp, fresh=True)
    known[(adapter_name, path)] = Found(adapter, found.guard, fresh=False)
    return found
