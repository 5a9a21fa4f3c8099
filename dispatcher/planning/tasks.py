"""RQ task functions for planning, and the periodic jobs `dispatcher scheduler` runs.

Tasks take no ORM objects (STYLE 7): the cadence task reads what is due from the database,
so running it late, twice, or in two workers at once builds each period exactly once.
"""

from __future__ import annotations

from dispatcher.models._base import utcnow
from dispatcher.planning.cadence import run_due_cadences

#: Cadence periods are days long; every ten minutes builds an instance soon after midnight
#: in the owner's time zone without loading the queue.
CADENCE_INTERVAL_SECONDS = 600


def run_cadences() -> int:
    """Build the instances of every repeating micro-goal whose period has started."""
    return run_due_cadences(utcnow())


PERIODIC_JOBS = [(run_cadences, CADENCE_INTERVAL_SECONDS)]
