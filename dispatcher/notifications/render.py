"""How a batch of notices reads: one mail (text and HTML) or one Slack message."""

from __future__ import annotations

from collections.abc import Sequence

from flask import current_app, render_template

from dispatcher.models import Owner
from dispatcher.notifications.kinds import HEADINGS, Notice, Topic

#: lines listed in one message; the rest are counted ("and 12 more")
MAX_LINES = 100


def grouped(notices: Sequence[Notice]) -> list[tuple[str, list[Notice]]]:
    """The notices under their headings, deliveries first."""
    return [
        (HEADINGS[topic], [n for n in notices if n.topic == topic])
        for topic in Topic
        if any(n.topic == topic for n in notices)
    ]


def summary(notices: Sequence[Notice]) -> str:
    """ "3 new deliveries, 1 question, 1 failure": the subject of a mail."""
    words = {Topic.DELIVERY: "new delivery", Topic.QUESTION: "question", Topic.FAILURE: "failure"}
    parts = []
    for topic, word in words.items():
        n = sum(1 for x in notices if x.topic == topic)
        if n:
            plural = word.replace("delivery", "deliveries") if "delivery" in word else word + "s"
            parts.append(f"{n} {word if n == 1 else plural}")
    return ", ".join(parts)


def compose(owner: Owner, notices: Sequence[Notice]) -> tuple[str, str, str]:
    """(subject, text, HTML) of one notification mail."""
    base = current_app.config["SETTINGS"].public_base_url.rstrip("/")
    context = {"owner": owner, "groups": grouped(notices[:MAX_LINES]), "base_url": base,
               "more": max(0, len(notices) - MAX_LINES)}  # fmt: skip
    text = render_template("notifications/mail.txt", **context)
    html = render_template("notifications/mail.html", **context)
    return f"Dispatcher: {summary(notices)}", text, html


def slack_text(notices: Sequence[Notice]) -> str:
    """The same batch as one Slack message (mrkdwn links)."""
    lines = [f"*Dispatcher: {summary(notices)}*"]
    for heading, items in grouped(notices[:MAX_LINES]):
        lines.append(f"_{heading}_")
        lines.extend(f"• <{n.url}|{_slack_escape(n.line)}>" for n in items)
    if len(notices) > MAX_LINES:
        lines.append(f"and {len(notices) - MAX_LINES} more")
    return "\n".join(lines)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
