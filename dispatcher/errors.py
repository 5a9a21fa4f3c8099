"""One exception root, so callers (and the queue) decide what to do from the type alone."""

from __future__ import annotations


class DispatcherError(Exception):
    """Root of every error Dispatcher raises on purpose."""


class ConfigurationError(DispatcherError):
    """A setting is missing or malformed; raised at start-up, never during a request."""


class NotFound(DispatcherError):
    """The object does not exist, or belongs to another owner (both look the same from outside)."""


class InvalidTransition(DispatcherError):
    """A row (a job, a dispatch, an assignment...) was asked to move where its state does not
    allow."""

    def __init__(
        self,
        job_id: int | None,
        current: str,
        action: str,
        allowed: list[str],
        *,
        entity: str = "job",
    ):
        self.job_id = job_id
        self.current = current
        self.action = action
        self.allowed = allowed
        self.entity = entity
        where = f"{entity} {job_id}" if job_id is not None else entity
        hint = ", ".join(allowed) if allowed else "nothing"
        super().__init__(
            f"cannot {action.replace('_', ' ')} {where}: it is {current}; "
            f"from {current} it can only: {hint}"
        )


class NotDeletable(InvalidTransition):
    """A job (or a node below it) holds money or owes a platform a call: it cannot be
    deleted. An InvalidTransition, so every caller answers it the same way (409)."""

    def __init__(self, job_id: int | None, current: str, reason: str):
        super().__init__(job_id, current, "delete", [reason])
        self.args = (f"cannot delete job {job_id}: {reason}",)


class BudgetExceeded(DispatcherError):
    """Reserving money would take an envelope past its budget."""


class InvalidChange(DispatcherError, ValueError):
    """An edit that would corrupt the money: a budget below what is already reserved and
    spent, or a goal's currency changed under money held in it. `field` names the input at
    fault. A ValueError too, so every caller that reports bad input reports this."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class TermsFixed(InvalidChange):
    """A job's order terms (price, assignments, channel, who does it) changed while money is
    reserved or paid for it at a channel: the owner must cancel it first."""


class AdapterError(DispatcherError):
    """A platform refused a call for good (a 4xx other than 429, or a malformed answer)."""

    def __init__(self, platform: str, message: str, status: int | None = None, body: str = ""):
        self.platform = platform
        self.status = status
        self.body = body
        super().__init__(message)

    def __str__(self) -> str:
        status = f" HTTP {self.status}" if self.status else ""
        body = f": {self.body[:300]}" if self.body else ""
        return f"{self.platform}{status}: {self.args[0]}{body}"


class RetryableAdapterError(AdapterError):
    """A platform call failed in a way that may succeed later (timeout, 5xx, 429)."""

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class CircuitOpen(RetryableAdapterError):
    """The adapter's breaker is open: the platform failed too often, calls are paused."""


class SignatureError(DispatcherError):
    """A webhook's signature or timestamp did not verify."""


class PayloadError(DispatcherError):
    """A webhook body could not be parsed (bad JSON, unknown event type)."""


class Unsupported(DispatcherError):
    """The channel cannot do this (cancel, revision...)."""
