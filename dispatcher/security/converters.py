"""URL converters: an `int` that only matches ids a database column can hold.

Werkzeug's `int` takes any number of digits; a 20-digit id then overflows the column inside
the query (a 500). Out of range, the route does not match, so the answer is a 404 like any
other unknown id, on every blueprint at once. The ids are INTEGER columns: 32 bits on
PostgreSQL (SQLite's are wider, but no id there goes past what PostgreSQL can hold either).
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Map
from werkzeug.routing.converters import IntegerConverter

#: The biggest id an INTEGER primary key holds on PostgreSQL (a signed 32-bit integer).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:id>` bounded to 0..2^31-1 unless a route asks for other bounds."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
