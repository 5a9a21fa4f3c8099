"""The adapter contract every channel implements, and the registry that finds adapters.

An adapter translates between Dispatcher and one platform. It never touches the database:
it takes a `JobSpec` and an idempotency key, and returns `Receipt`s and `NormalizedEvent`s.
Adapters register under the entry-point group ``dispatcher.adapters``, so a third-party
package can add one without changing Dispatcher.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

import requests

from dispatcher.errors import (
    AdapterError,
    ConfigurationError,
    RetryableAdapterError,
    Unsupported,
)

ENTRY_POINT_GROUP = "dispatcher.adapters"


class Capability(StrEnum):
    WEBHOOKS = "webhooks"
    POLL = "poll"
    CANCEL = "cancel"
    REDUNDANCY = "redundancy"  # several assignments of one job
    BONUS = "bonus"
    REVISION = "revision"
    FIND = "find"  # look an order up by idempotency key


class EventKind(StrEnum):
    """What a platform told us, in our words."""

    TAKEN = "taken"
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    MESSAGE = "message"
    PAID = "paid"
    #: the platform approved a submission on its own (auto-approval after its review window,
    #: or an approval that beat our reject): adopted, and the books follow it
    APPROVED = "approved"
    #: the platform rejected a submission on its own
    REJECTED = "rejected"
    #: the worker gave the assignment back, or the platform took it away for good
    RETURNED = "returned"
    #: authentic, but of a type Dispatcher does not use: stored as ignored, answered 2xx
    IGNORED = "ignored"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PersonRef:
    """The named person a teammate channel reaches: a plain copy of the owner's directory
    entry, with their handle on each service (empty when the owner gave none)."""

    name: str
    email: str = ""
    slack_handle: str = ""
    trello_handle: str = ""
    asana_handle: str = ""
    endpoint_url: str = ""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a platform needs to know about a job: a plain copy, no database row."""

    job_id: int
    title: str
    brief: str
    acceptance_criteria: tuple[str, ...]
    deliverable_kind: str
    price_cents: int
    currency: str
    assignments: int = 1
    due_date: date | None = None
    callback_url: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    #: teammate channels: who the job goes to, and the signed link to their submission page
    #: (no account needed), which every teammate message carries
    person: PersonRef | None = None
    submission_url: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to a teammate after the job went out: a revision request, the owner's answer
    to their question, a reminder before the due date, the decision on their work. Sent from
    the outbox, once per `key` (the outbox row's idempotency key)."""

    key: str
    kind: str  # "revision" | "answer" | "reminder" | "accepted" | "rejected" | ...
    person: PersonRef
    subject: str
    text: str
    job_id: int
    #: the order the notice is about (the Receipt's external id), for channels that thread
    #: messages on it (a Trello card, an Asana task)
    external_id: str = ""
    submission_url: str = ""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The platform's answer to an order: its id and where a person can see it."""

    external_id: str
    url: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """One thing that happened at the platform, with the platform's own event id for dedup."""

    kind: EventKind
    event_id: str
    external_id: str  # the order this event is about
    occurred_at: datetime
    raw: Mapping[str, Any]
    delivery_id: str | None = None  # the platform's id of a submission, for DELIVERED
    content: str = ""
    url: str | None = None
    worker: str = ""
    platform_status: str = ""
    #: the platform's id of the assignment (slot, place, worker's copy) this event is about;
    #: empty when the platform has one worker per order or does not say
    assignment_ref: str = ""
    #: what the platform paid or approved, for APPROVED / PAID, when it says
    payout_cents: int | None = None


@dataclass(frozen=True, slots=True)
class PollPage:
    """One page of changes from `Adapter.poll`; `next_cursor` is the platform's paging token
    (None: nothing more now). Events carry stable ids (for example slot id + status), so a
    change seen twice is stored once."""

    events: tuple[NormalizedEvent, ...] = ()
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    """Enough to point the platform at one submission when reviewing it."""

    external_order_id: str
    external_delivery_id: str


@dataclass(frozen=True, slots=True)
class HeldDecision:
    """The review decision a platform already holds for one submission, in our words
    ("accept", "revise", "reject"); `payout_cents` for an acceptance when the platform says."""

    decision: str
    payout_cents: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HandshakeReply:
    """The answer to a platform's webhook handshake (Asana's ``X-Hook-Secret``): the headers
    to echo, and the signing secret it hands over (empty: nothing to store). The webhook route
    stores the secret only for a connection expecting a handshake (dispatcher/handshakes.py)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    secret: str = ""
    status: int = 200


class Adapter(ABC):
    """Base class of every channel. Subclasses declare themselves in class attributes."""

    name: ClassVar[str]
    title: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: settings the adapter needs; secret ones are masked wherever shown
    secret_settings: ClassVar[tuple[str, ...]] = ()
    #: what an owner enters to connect this channel (a connection's credentials, encrypted
    #: at rest, never shown again) and its options (shown, editable)
    credential_fields: ClassVar[tuple[str, ...]] = ()
    option_fields: ClassVar[tuple[str, ...]] = ()
    #: what an owner should know before connecting it, shown on the connect form
    notice: ClassVar[str] = ""
    #: the service reports changes to things that are not our orders (every card on a board):
    #: an event about an order still unknown after a few minutes is ignored, not quarantined
    reports_foreign_orders: ClassVar[bool] = False
    #: whether jobs sent here cost money (personal goals never use paid channels)
    paid: ClassVar[bool] = True
    #: a channel to one named person of the owner's (email, Slack, their endpoint, a board):
    #: Dispatcher itself is the marketplace, so review decisions need no platform's consent
    #: and the owner pays the person; work comes back through the submission link
    teammate: ClassVar[bool] = False
    #: the HTTP status the webhook route answers an event it accepted with: Standard Webhooks
    #: senders take any 2xx; Slack's interactivity callbacks want exactly 200
    accepted_status: ClassVar[int] = 202

    @classmethod
    def validate_connection(
        cls, settings: Any, credentials: Mapping[str, str], options: Mapping[str, Any]
    ) -> None:
        """Check what an owner typed before it is stored (a URL it names is safe to call,
        say); raise ValueError, with a ``field`` attribute when one input is at fault."""
        return None

    #: the platform calls the webhook URL while `register_webhook` is in flight (Trello's
    #: HEAD check, Asana's handshake): the connection is committed first so that call finds it
    calls_back_on_register: ClassVar[bool] = False

    def __init__(
        self,
        settings: Any,
        session: requests.Session | None = None,
        *,
        credentials: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
    ):
        self.settings = settings
        #: one owner's connection: the adapter gets them per connection, never from settings;
        #: ``credentials["webhook_secret"]`` is the connection's own webhook signing secret
        self.credentials: Mapping[str, str] = dict(credentials or {})
        #: the Connection row's id, set by dispatcher.connections (the breaker is per connection)
        self.connection_id: int | None = None
        #: the connection's own webhook URL, set by dispatcher.connections (Trello signs its
        #: webhooks over the URL as registered)
        self.webhook_url: str = ""
        self.options: Mapping[str, Any] = dict(options or {})
        self.session = session or requests.Session()
        self.timeout = (settings.http_connect_timeout, settings.http_read_timeout)
        #: a shared circuit breaker, set by Dispatcher's task layer (dispatch/breaker.py)
        self.breaker: CallGuard | None = None

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    # -- outbound -----------------------------------------------------------------------
    @abstractmethod
    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        """Place the order. Must send the idempotency key wherever the platform takes one."""

    def find(self, idempotency_key: str) -> Receipt | None:
        """Look up an order placed earlier under this key (before a retry), or None."""
        raise Unsupported(f"{self.name} cannot look orders up by key")

    def cancel(self, external_id: str) -> None:
        raise Unsupported(f"{self.name} cannot cancel orders")

    def poll(self, external_id: str, cursor: str | None = None) -> PollPage:
        """Changes to one order since `cursor` (the platform's paging token), as events
        with stable ids; for channels without webhooks (Capability.POLL)."""
        raise Unsupported(f"{self.name} does not support polling")

    def check(self) -> str:
        """ "Test connection": one harmless call with this connection's credentials; returns
        what the platform said (account name, balance), raises AdapterError if refused."""
        raise Unsupported(f"{self.name} has no connection test")

    def register_webhook(self, url: str, secret: str) -> None:
        """Tell the platform where this connection's webhooks go and the secret that signs
        them, where its API allows (otherwise the owner pastes both into its dashboard)."""
        raise Unsupported(f"{self.name} takes its webhook URL in its own dashboard")

    def fee_cents(self, price_cents: int) -> int:
        """The platform's fee for one assignment at `price_cents`, paid on top of the
        worker's pay; the budget reserves and counts both."""
        return 0

    def notify(self, notice: Notice) -> None:
        """Teammate channels: send one message to the person (sent from the outbox, which
        retries it; the channel passes `notice.key` wherever the service de-duplicates)."""
        raise Unsupported(f"{self.name} cannot send messages")

    def accept(self, delivery: DeliveryRef, payout_cents: int) -> None:
        raise Unsupported(f"{self.name} cannot accept deliveries")

    def reject(self, delivery: DeliveryRef, reason: str) -> None:
        raise Unsupported(f"{self.name} cannot reject deliveries")

    def request_revision(self, delivery: DeliveryRef, feedback: str) -> None:
        raise Unsupported(f"{self.name} cannot ask for revisions")

    def decision(self, delivery: DeliveryRef) -> HeldDecision | None:
        """What the platform already holds for this submission (None: not reviewed yet).

        Asked before a decision is sent again after an attempt that may have reached the
        platform, and after a refusal, so a decision the platform has is adopted, never sent
        twice nor reported as failed."""
        raise Unsupported(f"{self.name} cannot look a review decision up")

    # -- inbound ------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise SignatureError unless the webhook is authentic and fresh."""
        raise Unsupported(f"{self.name} does not receive webhooks")

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        """Turn a verified webhook into events; raise PayloadError on a malformed body."""
        raise Unsupported(f"{self.name} does not receive webhooks")

    def event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """The delivery id used to de-duplicate a webhook before it is parsed."""
        raise Unsupported(f"{self.name} does not receive webhooks")

    def handshake(self, headers: Mapping[str, str], body: bytes) -> HandshakeReply | None:
        """A platform's webhook handshake (a set-up call, not an event), or None (the default:
        an ordinary delivery, verified and stored). Asked before `verify`, since a handshake
        carries no signature yet; the route answers with the reply and stores its secret
        only while the connection expects one."""
        return None

    # -- HTTP -----------------------------------------------------------------------------
    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one call with timeouts; classify failures as retryable or permanent.

        Retryable (RetryableAdapterError): connection errors, timeouts, 5xx, 429 (with the
        platform's Retry-After). Permanent (AdapterError): any other 4xx. With a breaker set,
        an open circuit fails fast (CircuitOpen) and only signs of an outage count against it.
        """
        kwargs.setdefault("timeout", self.timeout)
        breaker = self.breaker
        if breaker is not None:
            breaker.before_call()
        try:
            response = self.session.request(method, url, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if breaker is not None:
                breaker.record_failure()
            raise RetryableAdapterError(self.name, f"{type(exc).__name__}: {exc}") from exc
        if breaker is not None:
            if response.status_code >= 500:
                breaker.record_failure()
            else:
                breaker.record_success()
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableAdapterError(
                self.name,
                "platform busy" if response.status_code == 429 else "platform error",
                status=response.status_code,
                body=response.text,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            raise AdapterError(
                self.name, "request refused", status=response.status_code, body=response.text
            )
        return response

    def json_object(self, response: requests.Response) -> dict[str, Any]:
        """The answer's JSON object; AdapterError (permanent) when the platform answered
        something else, so a garbled answer is reported, never guessed at."""
        try:
            data = response.json()
        except ValueError as exc:
            raise AdapterError(
                self.name, "answer is not JSON", status=response.status_code, body=response.text
            ) from exc
        if not isinstance(data, dict):
            raise AdapterError(self.name, "answer is not a JSON object", body=response.text)
        return data


class CallGuard(Protocol):
    """What `Adapter.request` needs from a circuit breaker."""

    def before_call(self) -> None: ...

    def record_success(self) -> None: ...

    def record_failure(self) -> None: ...


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        from datetime import UTC

        return max(0.0, (when - datetime.now(UTC)).total_seconds())


class AdapterRegistry:
    """The adapters installed (entry points), instantiated once per app with its settings."""

    def __init__(self, settings: Any, classes: Mapping[str, type[Adapter]] | None = None):
        self.settings = settings
        self._classes = dict(classes) if classes is not None else discover()
        self._instances: dict[str, Adapter] = {}

    def names(self) -> list[str]:
        return sorted(self._classes)

    def classes(self) -> dict[str, type[Adapter]]:
        return dict(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def get(self, name: str) -> Adapter:
        if name not in self._classes:
            raise ConfigurationError(f"no adapter named {name!r} (have: {', '.join(self.names())})")
        if name not in self._instances:
            self._instances[name] = self._classes[name](self.settings)
        return self._instances[name]


def discover() -> dict[str, type[Adapter]]:
    """Every adapter class registered under the entry-point group."""
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise ConfigurationError(f"entry point {ep.name} is not an Adapter subclass")
        found[ep.name] = cls
    return found
