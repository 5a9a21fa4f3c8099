"""`dispatcher check`'s rows for the owners' connections: each adapter's test call.

The call is the one behind the connection page's "Test connection" (`Adapter.check()`), made
with a short timeout and without the connection's circuit breaker: an operator's check must
not wait on a hung platform, and its failures must not pause the owner's dispatches. Nothing
is written (the connection page records its own tests)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from sqlalchemy import select

from adapters.base import Adapter
from dispatcher.connections import adapter_for_connection, scrub
from dispatcher.errors import AdapterError, DispatcherError, Unsupported
from dispatcher.extensions import db
from dispatcher.models import Connection, Owner

#: seconds for each of connect and read in a connection's test call
DEFAULT_TIMEOUT = 5.0

OK, FAILED, SKIPPED = "ok", "FAIL", "n/a"


@dataclass(frozen=True)
class ConnectionCheck:
    owner: str
    label: str
    adapter: str
    status: str  # OK, FAILED, or SKIPPED (the adapter has no test call)
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def check_connections(timeout: float = DEFAULT_TIMEOUT) -> list[ConnectionCheck]:
    """Every connection's test call, by owner email then connection id."""
    rows = db.session.execute(
        select(Connection, Owner.email)
        .join(Owner, Owner.id == Connection.owner_id)
        .order_by(Owner.email, Connection.id)
    ).all()
    return [_check_one(connection, email, timeout) for connection, email in rows]


def _check_one(connection: Connection, email: str, timeout: float) -> ConnectionCheck:
    def row(status: str, detail: str) -> ConnectionCheck:
        detail = scrub(detail, connection).splitlines()[0][:200] if detail else ""
        return ConnectionCheck(email, connection.label, connection.adapter, status, detail)

    try:
        adapter = unguarded(adapter_for_connection(connection.id), timeout)
        return row(OK, adapter.check() or "ok")
    except Unsupported as exc:
        return row(SKIPPED, str(exc))
    except (AdapterError, DispatcherError, KeyError) as exc:
        # KeyError: the connection names an adapter this installation does not have
        return row(FAILED, str(exc) or type(exc).__name__)


def unguarded(adapter: Adapter, timeout: float) -> Adapter:
    """A copy of the connection's adapter with short timeouts and no breaker (the cached
    adapter that dispatches use is left as it is)."""
    probe = copy.copy(adapter)
    probe.breaker = None
    connect, read = adapter.timeout
    probe.timeout = (min(connect, timeout), min(read, timeout))
    return probe
