"""The webhook channel's wire format in the API docs (/api/docs): what Dispatcher POSTs to a
teammate's own system, and what it takes back. Not an operation of our API (OpenAPI 3.0 has
no place for webhooks we send), so it is a tag of its own, written once, here; the format
itself lives in adapters/webhook_channel.py and the tests pin it."""

from __future__ import annotations

from flask_smorest import Api

from adapters.webhook_channel import NOTICE_TYPES, STATUS_MAP

TAG = "Teammate webhooks"


def description() -> str:
    sent = ", ".join(f"`{t}`" for t in NOTICE_TYPES.values())
    taken = ", ".join(f"`{t}`" for t in STATUS_MAP)
    return f"""The **webhook channel** sends a job to a teammate's own system and takes their
answers back, both signed the [Standard Webhooks](https://www.standardwebhooks.com/) way with
the connection's webhook secret (`whsec_...`, shown once when the connection is made).

Every POST carries the headers `webhook-id` (stable: a retry of the same event has the same
id, so de-duplicate on it), `webhook-timestamp` (unix seconds) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of `"{{id}}.{{timestamp}}.{{body}}"` under the secret's key),
and a JSON body `{{"type", "timestamp", "data"}}`. Answer any 2xx to acknowledge; 5xx and 429
are retried; 410 tells us the endpoint is gone. Any Standard Webhooks library verifies them,
for example in Python `standardwebhooks.Webhook(secret).verify(body, headers)`.

What we send to the person's endpoint URL (else the connection's `endpoint_url` option):

- `job.assigned`: the job is theirs.
- {sent}: a notice about it (`data.kind`, `data.subject`, `data.text`).

```
POST <endpoint_url>
webhook-id: msg_3f2c...
webhook-timestamp: 1767225600
webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=
content-type: application/json

{{"type": "job.assigned", "timestamp": "2026-12-01T10:00:00+00:00",
 "data": {{"order_id": "webhook-dsp_...", "job_id": 42, "title": "Fix the booking form",
          "brief": "...", "acceptance_criteria": ["works on Safari 17"],
          "deliverable_kind": "url", "due_date": "2026-12-15",
          "pay": {{"amount_cents": 12000, "currency": "USD"}},
          "submission_url": "https://.../t/...", "person": {{"name": "...", "email": "..."}}}}}}
```

What we take back at the connection's webhook URL (`/webhooks/webhook/<path>`), signed the
same way with the same secret, `data.order_id` naming the order: {taken}. `job.delivered`
carries `data.content` and/or `data.url` (and may carry `data.submission_id`); `job.question`
carries `data.content`, shown on the owner's timeline. Other types are answered 200 and kept
as ignored. A bad or stale signature (more than 5 minutes off) is answered 401."""


def document(api: Api) -> None:
    """Add the tag, with the format above, to the OpenAPI description."""
    api.spec.tag({"name": TAG, "description": description()})
