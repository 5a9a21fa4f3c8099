"""Email: the brief, the owner's answers, revision requests, decisions and reminders go to a
teammate by mail, each carrying the signed link to their submission page (no account).

Sending goes through the outbox (dispatcher/teammates/outbox.py): `dispatch` places nothing
remotely (the order is local, `mail-<idempotency key>`), and the brief is staged as a notice
of kind "brief" when the order is recorded as placed. `notify` hands one notice to the SMTP
server named by SMTP_URL (RFC 5321, through dispatcher.mail.send_message), or, with none
configured, writes it to the local mailbox under instance/mailbox/<connection>/ (the /mailbox
page), so the whole loop runs on a fresh machine.

Delivery guarantee: at most once. The Message-ID is derived from the outbox key; a refusal or
an unreachable server before DATA is retryable (nothing was taken); a connection lost during
DATA is reported as of unknown outcome and never resent (the outbox marks it failed and the
owner sees it). In mailbox mode the file itself says whether it was written.
Nothing comes back by mail: replies arrive through the submission page.
"""

from __future__ import annotations

import os
import re
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import ClassVar

from adapters.base import JobSpec, Notice, PersonRef, Receipt
from adapters.teammate import TeammateAdapter
from dispatcher.errors import AdapterError, RetryableAdapterError

MAILBOX = "mailbox"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def mailbox_dir(instance_path: Path, connection_id: int | None) -> Path:
    """Where a connection's mail is kept when no SMTP server is configured."""
    return Path(instance_path) / MAILBOX / str(connection_id or 0)


def file_name(key: str) -> str:
    return _SAFE.sub("_", key)[:150] + ".eml"


class EmailAdapter(TeammateAdapter):
    name: ClassVar[str] = "email"
    title: ClassVar[str] = "Email"
    brief_by_notice: ClassVar[bool] = True
    notice: ClassVar[str] = (
        "Jobs go to the person's email address with a link to a page where they take the job, "
        "ask questions and hand in the work (no account needed). Without SMTP_URL, mail stays "
        "in your local mailbox (Mailbox in the menu)."
    )

    def reaches(self, person: PersonRef) -> str:
        if not person.email or "@" not in person.email:
            return f"{person.name} has no email address: add one in People first"
        return ""

    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        """Nothing to place remotely: the brief goes through the outbox once placed."""
        return Receipt(external_id=f"mail-{idempotency_key}")

    def notify(self, notice: Notice) -> None:
        message = self.compose(notice)
        url = self.settings.smtp_url
        if not url:
            self._to_mailbox(notice.key, message)
            return
        from dispatcher.mail import MailNotSent, MailOutcomeUnknown, send_message

        try:
            send_message(message, url)
        except MailNotSent as exc:
            if exc.temporary:
                raise RetryableAdapterError(self.name, str(exc)) from exc
            raise AdapterError(self.name, str(exc)) from exc
        except MailOutcomeUnknown as exc:
            raise AdapterError(self.name, f"outcome unknown, not resent: {exc}") from exc

    def was_notified(self, key: str) -> bool | None:
        if self.settings.smtp_url:
            return None
        return (self._box() / file_name(key)).exists()

    def compose(self, notice: Notice) -> EmailMessage:
        """The mail for one notice: plain text, the link on a line of its own."""
        sender = self.settings.mail_from
        domain = sender.rpartition("@")[2] or "localhost"
        message = EmailMessage()
        message["From"] = sender
        message["To"] = formataddr((notice.person.name, notice.person.email))
        message["Subject"] = notice.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{_SAFE.sub('.', notice.key)}@{domain}>"
        message["X-Dispatcher-Kind"] = notice.kind
        body = notice.text.rstrip() + "\n"
        if notice.submission_url:
            body += (
                "\nOpen the job (take it, ask a question, hand in your work):\n"
                f"{notice.submission_url}\n"
            )
        message.set_content(body)
        return message

    def _box(self) -> Path:
        return mailbox_dir(self.settings.instance_path, self.connection_id)

    def _to_mailbox(self, key: str, message: EmailMessage) -> None:
        box = self._box()
        box.mkdir(parents=True, exist_ok=True)
        path = box / file_name(key)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(message.as_bytes())
        os.replace(tmp, path)  # whole or absent: a reader never sees half a message
