"""RQ task functions for Today, and the periodic list the scheduler registers
(dispatcher/periodic.py reads PERIODIC_JOBS from here)."""

from __future__ import annotations

#: How often the digest job runs. Any interval under an hour reaches every owner at their
#: chosen hour; running it often is safe because sending is idempotent per owner and day.
DIGEST_INTERVAL_SECONDS = 600


def send_digests() -> int:
    """Send the daily digest to every owner whose chosen hour it is now; returns how many."""
    from dispatcher.mail import send_due_digests

    return len(send_due_digests())


PERIODIC_JOBS = [(send_digests, DIGEST_INTERVAL_SECONDS, "slow")]  # SMTP waits: queues.SLOW
