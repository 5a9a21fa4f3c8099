"""Posting a notification to the owner's Slack incoming webhook.

Slack's incoming webhooks take a JSON body {"text": ...} by POST and answer 200 "ok"
(https://api.slack.com/messaging/webhooks). The URL is the owner's, so it is checked before
use: until the shared outbound-URL check (dispatcher/security/outbound.py, `check_url`) lands,
only the scheme is checked here; `check_slack_url` is the one place to switch over.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from flask import current_app

from dispatcher.errors import DispatcherError


class SlackError(DispatcherError):
    """Slack (or whatever the URL points at) did not take the message."""


def check_slack_url(url: str) -> str:
    """The URL, stripped, if it may be posted to; raises ValueError with the reason."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("a Slack webhook URL starts with https:// (https://hooks.slack.com/...)")
    return url


def post_text(url: str, text: str) -> None:
    """POST one message; raises SlackError on a refusal, a timeout or a connection error."""
    settings = current_app.config["SETTINGS"]
    try:
        answer = requests.post(
            check_slack_url(url),
            json={"text": text},
            timeout=(settings.http_connect_timeout, settings.http_read_timeout),
            allow_redirects=False,
        )
    except (requests.RequestException, ValueError) as exc:
        raise SlackError(f"Slack webhook not reached: {type(exc).__name__}") from None
    if not 200 <= answer.status_code < 300:
        raise SlackError(f"Slack webhook answered {answer.status_code}: {answer.text[:200]}")
