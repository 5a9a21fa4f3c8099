"""Only Dispatcher's own submission page marks a stored event as a page action: a sender's
webhook carrying the marker header has it dropped before anything reads or stores it."""

from __future__ import annotations

from dispatch.helpers import hook_url, signed_webhook
from fakes.connections import connect_sandbox

from adapters.teammate import PAGE_HEADER
from dispatcher.extensions import db
from dispatcher.models import InboundEvent


def test_a_webhook_cannot_pose_as_a_page_action(owner, client):
    connect_sandbox(owner.id)
    headers, body = signed_webhook("order.delivered", "ord_1", submission_id="sub_1")
    headers[PAGE_HEADER] = "1"
    response = client.post(hook_url(owner.id), data=body, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    stored = db.session.scalars(db.select(InboundEvent)).one()
    assert PAGE_HEADER not in stored.headers
