"""The sandbox's knobs: worker timing and fault injection, set at start and via /_control.

Every knob is validated here, so a typo in a test (`fail_rat`) is a 422, not a silent no-op.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


class OptionsError(ValueError):
    """One or more knobs were unknown or out of range; `errors` maps name to reason."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


_RATES = {
    "fail_rate",
    "fail_after_create_rate",
    "stall_rate",
    "rate_limit_rate",
    "duplicate_webhooks",
    "withdraw_rate",
}
_BOOLS = {"reorder_webhooks", "pause_workers", "send_webhooks"}
_INTS = {"webhook_max_attempts", "seed"}
_NULLABLE = {"expire_after", "seed"}


@dataclass
class SandboxOptions:
    """Current settings of one sandbox. Rates are fractions 0..1; delays are seconds."""

    take_delay: float = 2.0
    #: seconds between one place of an order being taken and the next (workers arrive one
    #: after another), so an order spends time part-way through
    take_stagger: float = 0.0
    deliver_delay: float = 5.0
    #: fraction of POST /orders answered 503 without creating anything
    fail_rate: float = 0.0
    #: fraction of POST /orders that create the order and still answer 503
    fail_after_create_rate: float = 0.0
    #: fraction of POST /orders that sleep `stall_seconds` after creating, before answering
    stall_rate: float = 0.0
    stall_seconds: float = 15.0
    #: fraction of POST /orders answered 429 with Retry-After: 1
    rate_limit_rate: float = 0.0
    #: fraction of webhook events delivered twice (same webhook-id)
    duplicate_webhooks: float = 0.0
    #: hold each order's events and send them newest first (delivered before taken)
    reorder_webhooks: bool = False
    #: how long reordering may hold an event that no later event has overtaken yet
    reorder_max_hold: float = 10.0
    #: fraction of takes where the worker withdraws instead of delivering
    withdraw_rate: float = 0.0
    #: open orders nobody took within this many seconds expire (None: never)
    expire_after: float | None = None
    webhook_retry_delay: float = 1.0
    webhook_max_attempts: int = 6
    webhook_timeout: float = 5.0
    pause_workers: bool = False
    #: False: polling-only mode, no webhook is sent; clients read GET /orders/<id>/events
    send_webhooks: bool = True
    seed: int | None = None

    def update(self, values: dict[str, Any]) -> None:
        """Validate every value first, then apply them all (all or nothing)."""
        clean = self.validate(values)
        for name, value in clean.items():
            setattr(self, name, value)

    @classmethod
    def validate(cls, values: dict[str, Any]) -> dict[str, Any]:
        known = {f.name for f in fields(cls)}
        errors: dict[str, str] = {}
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                errors[name] = f"unknown option (known: {', '.join(sorted(known))})"
                continue
            try:
                clean[name] = _convert(name, value)
            except ValueError as exc:
                errors[name] = str(exc)
        if errors:
            raise OptionsError(errors)
        return clean

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _convert(name: str, value: Any) -> Any:
    if value is None:
        if name in _NULLABLE:
            return None
        raise ValueError("must not be null")
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if name in _INTS:
        if int(value) != value:
            raise ValueError("must be a whole number")
        value = int(value)
        if name == "webhook_max_attempts" and value < 1:
            raise ValueError("must be at least 1")
        return value
    value = float(value)
    if value < 0:
        raise ValueError("must not be negative")
    if name in _RATES and value > 1:
        raise ValueError("is a fraction: between 0 and 1")
    return value


class Dice:
    """The sandbox's one random source: seeded for repeatable runs, shared by threads."""

    def __init__(self, seed: int | None = None):
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._rng.seed(seed)

    def chance(self, rate: float) -> bool:
        """True with probability `rate` (exactly never at 0 and always at 1)."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return self._rng.random() < rate
