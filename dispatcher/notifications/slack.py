"""Posting a notification to the owner's Slack incoming webhook.

Slack's incoming webhooks take a JSON body {"text": ...} by POST and answer 200 "ok"
(https://api.slack.com/messaging/webhooks). The URL is the owner's, so it goes through the
outbound URL guard (dispatcher/security/outbound.py): checked when saved, and again at
connection time and on any redirect by its safe session.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from flask import current_app

from dispatcher.errors import DispatcherError
from dispatcher.security.outbound import UnsafeURL, check_url, safe_session


class SlackError(DispatcherError):
    """Slack (or whatever the URL points at) did not take the message."""


def check_slack_url(url: str) -> str:
    """The URL, stripped, if it may be posted to; raises ValueError with the reason."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("a Slack webhook URL starts with https:// (https://hooks.slack.com/...)")
    check_url(url, current_app.config["SETTINGS"])  # UnsafeURL is a ValueError
    return url


def post_text(url: str, text: str) -> None:
    """POST one message; raises SlackError on a refusal, a timeout or a connection error."""
    settings = current_app.config["SETTINGS"]
    try:
        with safe_session(settings) as session:
            answer = session.post(
                check_slack_url(url),
                json={"text": text},
                timeout=(settings.http_connect_timeout, settings.http_read_timeout),
                allow_redirects=False,
            )
    except (requests.RequestException, ValueError, UnsafeURL) as exc:
        raise SlackError(f"Slack webhook not reached: {type(exc).__name__}") from None
    if not 200 <= answer.status_code < 300:
        raise SlackError(f"Slack webhook answered {answer.status_code}: {answer.text[:200]}")
