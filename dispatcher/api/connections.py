"""/api/v1/connections: the owner's channels (the settings page's twin; same service rules)."""

from __future__ import annotations

from flask_smorest import Blueprint, abort

from dispatcher import connections
from dispatcher.api import auth, problems
from dispatcher.extensions import db
from dispatcher.models import Connection
from dispatcher.schemas.connections import (
    CheckSchema,
    ConnectionCreateSchema,
    ConnectionSchema,
    ConnectionSecretSchema,
)

blp = Blueprint(
    "Connections",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Your channels. Credentials are stored encrypted and never returned; each "
        "connection's webhook secret is returned once, when it is made or rotated."
    ),
)
auth.protect(blp)
problems.install(blp)

NOT_FOUND = "No such connection (or not yours)"


def _mine(connection_id: int) -> Connection:
    return connections.get(connection_id, auth.owner_id())


@blp.route("/connections")
@blp.response(200, ConnectionSchema(many=True))
def list_connections():
    """List my connections (no secrets)"""
    return connections.for_owner(auth.owner_id())


@blp.route("/connections", methods=["POST"])
@blp.arguments(ConnectionCreateSchema)
@blp.response(201, ConnectionSecretSchema)
@blp.alt_response(422, description="Unknown adapter, or a credential missing")
def create(data: dict):
    """Connect a channel; the answer holds the webhook secret once"""
    try:
        connection, _ = connections.create(
            auth.owner_id(), data["adapter"], data["label"], data["credentials"], data["options"]
        )
    except ValueError as exc:
        field = getattr(exc, "field", None) or (
            "adapter" if "channel" in str(exc) else "credentials"
        )
        problems.field_error(field, str(exc))
    connections.sync_webhook(connection)
    db.session.commit()
    return connection, {"Cache-Control": "no-store"}


@blp.route("/connections/<int:connection_id>/check", methods=["POST"])
@blp.response(200, CheckSchema)
@blp.alt_response(404, description=NOT_FOUND)
def check(connection_id: int):
    """Test the connection with the platform (and register its webhook where possible)"""
    ok, message = connections.check(_mine(connection_id))
    db.session.commit()
    return {"ok": ok, "message": message}


@blp.route("/connections/<int:connection_id>/rotate", methods=["POST"])
@blp.response(200, ConnectionSecretSchema)
@blp.alt_response(404, description=NOT_FOUND)
def rotate(connection_id: int):
    """A new webhook secret, returned once; the old one stops verifying at once"""
    connection = _mine(connection_id)
    connections.rotate_secret(connection)
    connections.sync_webhook(connection)
    db.session.commit()
    return connection, {"Cache-Control": "no-store"}


@blp.route("/connections/<int:connection_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description="Jobs with money held use it")
def delete(connection_id: int):
    """Delete a connection (refused while jobs using it hold money)"""
    try:
        connections.delete(_mine(connection_id))
    except connections.ConnectionInUse as exc:
        db.session.rollback()
        abort(409, str(exc))
    db.session.commit()
