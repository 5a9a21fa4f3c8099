"""Slack teammate channel: the job goes to a Slack channel through an incoming webhook, and the
teammate's "Take it" and "Done" buttons come back through Slack's interactivity callback.

API: incoming webhooks (https://api.slack.com/messaging/webhooks): ``POST`` JSON ``{text,
blocks}`` to the webhook URL the owner pastes (the URL is the credential and fixes the
channel); Slack answers 200 ``ok``, or 400 ``invalid_payload`` / ``no_text``, 403, 404, 410,
429 with Retry-After. Block Kit: https://api.slack.com/reference/block-kit/blocks. Incoming
webhooks have no idempotency and no test endpoint: a retry after a post that reached Slack
but whose answer was lost posts the message twice (harmless: both carry the same order id);
`check` validates the URL (format and outbound safety) and posts nothing.

Interactivity (https://api.slack.com/interactivity/handling): Slack POSTs form-encoded
``payload=<JSON>`` to the Request URL the owner sets in their Slack app (this connection's
webhook URL) and wants HTTP 200 within 3 s (`accepted_status`). Verified with Slack's v0
signature (https://api.slack.com/authentication/verifying-requests-from-slack): header
``X-Slack-Signature`` = ``v0=`` + hex HMAC-SHA256(signing secret,
``"v0:{X-Slack-Request-Timestamp}:{raw body}"``), timestamp within the webhook window.

Mapped (ACTION_MAP): a ``block_actions`` payload whose action is ``dispatcher.take`` ->
TAKEN, ``dispatcher.done`` -> DELIVERED; the action's ``value`` is the order id. "Done" is a
delivery so the job reaches review from Slack alone: its content says who pressed it, and the
work itself (text, a link, files) can follow through the submission link the message
carries, as a further delivery. Another action id -> UNKNOWN; another payload type
(shortcuts, modals) -> IGNORED; both are stored as ignored and answered 200.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from adapters.base import (
    Capability,
    EventKind,
    JobSpec,
    NormalizedEvent,
    Notice,
    PersonRef,
    Receipt,
)
from adapters.owner_urls import OwnerURLAdapter
from adapters.teammate import TeammateAdapter
from dispatcher.errors import AdapterError, PayloadError, SignatureError
from dispatcher.money import format_cents
from dispatcher.security.outbound import UnsafeURL, check_url, split_url

TAKE = "dispatcher.take"
DONE = "dispatcher.done"
OPEN = "dispatcher.open"  # the link button: Slack calls back for it too, ignored

#: our action ids, in our words; any other action id maps to EventKind.UNKNOWN
ACTION_MAP: dict[str, EventKind] = {TAKE: EventKind.TAKEN, DONE: EventKind.DELIVERED}

SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"

#: Block Kit's limits (characters): section text, header text, button value and url
SECTION_MAX, HEADER_MAX, VALUE_MAX, URL_MAX = 3000, 150, 2000, 3000
#: a Slack member id (U…, W…), which a mention needs to notify the person
MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class SlackAdapter(OwnerURLAdapter, TeammateAdapter):
    name = "slack"
    title = "Slack (a teammate)"
    capabilities = frozenset({Capability.WEBHOOKS, Capability.REVISION})
    credential_fields = ("webhook_url", "signing_secret")
    notice = (
        "For a teammate on your Slack: create a Slack app with an incoming webhook for the "
        "channel (paste its URL here) and turn on Interactivity with this connection's webhook "
        "URL as the Request URL (paste the app's signing secret here). Jobs are posted with "
        "the brief, the pay and a submission link; “Take it” and “Done” come back here."
    )
    accepted_status = 200

    @classmethod
    def validate_connection(
        cls, settings: Any, credentials: Mapping[str, str], options: Mapping[str, Any]
    ) -> None:
        check_url(credentials.get("webhook_url", ""), settings, field="webhook_url")

    # -- outbound -----------------------------------------------------------------------
    def check(self) -> str:
        url = self._webhook_url()
        try:
            check_url(url, self.settings)
        except UnsafeURL as exc:
            raise AdapterError(self.name, f"webhook URL refused: {exc}") from exc
        return (
            f"webhook URL for {split_url(url)[1]} looks right; Slack's incoming webhooks have "
            "no test call, so nothing was posted"
        )

    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        order_id = f"slack-{idempotency_key}"
        message = job_message(job, order_id)
        self.request("POST", self._webhook_url(), json=message)
        return Receipt(external_id=order_id, raw={"posted": message["text"]})

    def notify(self, notice: Notice) -> None:
        self.request("POST", self._webhook_url(), json=notice_message(notice))

    # -- inbound ------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.credentials.get("signing_secret")
        if not secret:
            raise SignatureError("this connection has no Slack signing secret")
        verify_signature(secret, headers, body, tolerance=self.settings.webhook_tolerance_seconds)

    def callback_event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        payload = interaction(body)
        actions = payload.get("actions")
        action = actions[0] if isinstance(actions, list) and actions else {}
        trigger = payload.get("trigger_id")
        if isinstance(trigger, str) and trigger:
            return f"slack:{trigger}"
        stamp = action.get("action_ts") if isinstance(action, dict) else None
        if isinstance(stamp, str) and stamp:
            return f"slack:{_who(payload) or '?'}:{stamp}"
        return "slack:" + hashlib.sha256(body).hexdigest()[:40]

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        payload = interaction(body)
        type_ = payload.get("type")
        event_id = self.event_id(headers, body)
        if type_ != "block_actions":
            return [_ignored(payload, event_id, f"payload {type_}")]
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise PayloadError("Slack block_actions payload has no actions")
        action = actions[0]
        action_id = action.get("action_id")
        if not isinstance(action_id, str) or not action_id:
            raise PayloadError("Slack action has no action_id")
        kind = ACTION_MAP.get(action_id, EventKind.UNKNOWN)
        order_id = action.get("value")
        if kind is not EventKind.UNKNOWN and not (isinstance(order_id, str) and order_id):
            raise PayloadError(f"Slack action {action_id} carries no order id in its value")
        who = _who(payload)
        occurred = _when(action.get("action_ts"))
        content = ""
        if kind is EventKind.DELIVERED:
            content = f"Marked done in Slack by {who or 'someone'}."
        return [
            NormalizedEvent(
                kind=kind,
                event_id=event_id,
                external_id=order_id if isinstance(order_id, str) else "",
                occurred_at=occurred,
                raw=payload,
                delivery_id=event_id if kind is EventKind.DELIVERED else None,
                content=content,
                worker=who,
                platform_status=action_id,
            )
        ]

    # -- helpers --------------------------------------------------------------------------
    def _webhook_url(self) -> str:
        return self.credentials.get("webhook_url", "")


# -- the messages ---------------------------------------------------------------------------
def job_message(job: JobSpec, order_id: str) -> dict[str, Any]:
    """The Block Kit message of one job: who it is for, the brief, criteria, due date and pay,
    a link button to the submission page, and the "Take it" / "Done" buttons."""
    mention = mention_of(job.person)
    intro = f"{mention}, a job for you" if mention else "A job for your team"
    facts = [f"*Pay*\n{format_cents(job.price_cents, job.currency)}"]
    if job.due_date:
        facts.insert(0, f"*Due*\n{job.due_date.isoformat()}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(job.title, HEADER_MAX)},
        {"type": "section", "text": _mrkdwn(f"{intro}:\n{escape(job.brief)}")},
        {"type": "section", "fields": [_mrkdwn(f) for f in facts]},
    ]
    if job.acceptance_criteria:
        items = "\n".join(f"• {escape(c)}" for c in job.acceptance_criteria)
        blocks.append({"type": "section", "text": _mrkdwn(f"*Done means*\n{items}")})
    buttons = [
        _button("Take it", TAKE, value=order_id, style="primary"),
        _button("Done", DONE, value=order_id),
    ]
    if job.submission_url:
        buttons.insert(0, _button("Submit work", OPEN, url=job.submission_url))
    blocks.append({"type": "actions", "block_id": "dispatcher", "elements": buttons})
    text = f"{intro}: {job.title}"
    if job.submission_url:
        text += f" (submit at {job.submission_url})"
    return {"text": text, "blocks": blocks}


def notice_message(notice: Notice) -> dict[str, Any]:
    """A revision request, an answer, a reminder or a decision, as one Slack message."""
    mention = mention_of(notice.person)
    lead = f"{mention} " if mention else ""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(f"{lead}*{escape(notice.subject)}*")},
        {"type": "section", "text": _mrkdwn(escape(notice.text) or "_(no text)_")},
    ]
    buttons = []
    if notice.submission_url:
        buttons.append(_button("Submit work", OPEN, url=notice.submission_url))
    if notice.kind == "revision" and notice.external_id:
        buttons.append(_button("Done", DONE, value=notice.external_id))
    if buttons:
        blocks.append({"type": "actions", "block_id": "dispatcher", "elements": buttons})
    return {"text": f"{lead}{notice.subject}", "blocks": blocks}


def mention_of(person: PersonRef | None) -> str:
    """A mention that notifies (``<@U123>``) for a member id, else the name as written."""
    if person is None:
        return ""
    handle = person.slack_handle.strip().lstrip("@")
    if MEMBER_ID.match(handle):
        return f"<@{handle}>"
    return escape(f"@{handle}" if handle else person.name)


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: owner text must not become links, mentions or markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text or "-", limit), "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, SECTION_MAX)}


def _button(
    label: str, action_id: str, *, value: str = "", url: str = "", style: str = ""
) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": _plain(label, 75), "action_id": action_id}
    if value:
        button["value"] = _cut(value, VALUE_MAX)
    if url:
        button["url"] = url[:URL_MAX]
    if style:
        button["style"] = style
    return button


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the callback ----------------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Slack's v0 signature of one request."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless Slack signed `body` with `secret` within `tolerance` s."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts, offered = lowered.get(TIMESTAMP_HEADER, ""), lowered.get(SIGNATURE_HEADER, "")
    if not raw_ts.strip() or not offered.strip():
        raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature header")
    try:
        ts = int(raw_ts.strip())
    except ValueError:
        raise SignatureError("X-Slack-Request-Timestamp is not unix seconds") from None
    skew = abs((time.time() if now is None else now) - ts)
    if skew > tolerance:
        raise SignatureError(f"X-Slack-Request-Timestamp is {int(skew)} s off (limit {tolerance})")
    expected = sign(secret, ts, body)
    if not hmac.compare_digest(offered.strip().encode("utf-8", "replace"), expected.encode()):
        raise SignatureError("X-Slack-Signature does not match (wrong secret or altered body)")


def interaction(body: bytes) -> dict[str, Any]:
    """The JSON object in an interactivity callback's ``payload`` form field."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
        raise PayloadError(f"Slack callback has no JSON payload field: {exc}") from exc
    if not isinstance(payload, dict):
        raise PayloadError("Slack callback payload is not a JSON object")
    return payload


def _who(payload: Mapping[str, Any]) -> str:
    user = payload.get("user")
    if not isinstance(user, dict):
        return ""
    for key in ("username", "name", "id"):
        if isinstance(user.get(key), str) and user[key]:
            return user[key]
    return ""


def _when(action_ts: Any) -> datetime:
    try:
        return datetime.fromtimestamp(float(action_ts), UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


def _ignored(payload: Mapping[str, Any], event_id: str, what: str) -> NormalizedEvent:
    return NormalizedEvent(
        kind=EventKind.IGNORED,
        event_id=event_id,
        external_id="",
        occurred_at=datetime.now(UTC),
        raw=payload,
        platform_status=what,
    )
