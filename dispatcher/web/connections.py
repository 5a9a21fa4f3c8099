"""Settings → Connections: the owner's channels (DESIGN rule 7).

Connect a channel (its credentials are encrypted at rest and never shown again), test it,
see its webhook URL, rotate its webhook secret, delete it. A webhook secret is shown once,
on the page that answers its creation or rotation (never cached, never again afterwards).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import login_required

from dispatcher import connections
from dispatcher.errors import NotFound
from dispatcher.extensions import db
from dispatcher.forms import connection_form, connection_values
from dispatcher.models import Connection
from dispatcher.web.common import owner_id, refuse

bp = Blueprint("connections", __name__, url_prefix="/settings/connections")


@bp.before_request
@login_required
def _owners_only() -> None:
    """Every page here is one owner's settings."""


def _classes() -> dict:
    return current_app.extensions["dispatcher.adapters"].classes()


def _mine(connection_id: int) -> Connection:
    try:
        return connections.get(connection_id, owner_id())
    except NotFound:
        abort(404)


def _forms(submitted: str | None = None, form=None) -> dict:
    forms = {}
    for name, cls in sorted(_classes().items()):
        if name == submitted and form is not None:
            forms[name] = form
        else:
            forms[name] = connection_form(cls, formdata=None, prefix=name)
    return forms


@bp.get("")
def index():
    return render_template(
        "connections/index.html",
        connections=connections.for_owner(owner_id()),
        forms=_forms(),
        classes=_classes(),
        webhook_url=connections.webhook_url,
    )


@bp.post("/new/<adapter_name>")
def create(adapter_name: str):
    cls = _classes().get(adapter_name)
    if cls is None:
        abort(404)
    form = connection_form(cls, prefix=adapter_name)
    connection = None
    if form.validate_on_submit():
        credentials, options = connection_values(form)
        try:
            connection, secret = connections.create(
                owner_id(), adapter_name, form.label.data or "", credentials, options
            )
        except ValueError as exc:
            _field_error(form, exc)
    if connection is None:
        page = render_template(
            "connections/index.html",
            connections=connections.for_owner(owner_id()),
            forms=_forms(adapter_name, form),
            classes=_classes(),
            webhook_url=connections.webhook_url,
        )
        return page, 422
    connections.sync_webhook(connection)
    db.session.commit()
    return _secret_page(connection, secret, "connected")


@bp.post("/<int:connection_id>/check")
def check(connection_id: int):
    connection = _mine(connection_id)
    ok, message = connections.check(connection)
    db.session.commit()
    flash(f"{connection.label}: {message}", "success" if ok else "error")
    return redirect(url_for("connections.index"), code=303)


@bp.post("/<int:connection_id>/rotate")
def rotate(connection_id: int):
    connection = _mine(connection_id)
    secret = connections.rotate_secret(connection)
    connections.sync_webhook(connection)
    db.session.commit()
    return _secret_page(connection, secret, "rotated")


@bp.post("/<int:connection_id>/delete")
def delete(connection_id: int):
    connection = _mine(connection_id)
    label = connection.label
    try:
        connections.delete(connection)
        db.session.commit()
    except connections.ConnectionInUse as exc:
        refuse(exc)
    else:
        flash(f"Deleted “{label}”.", "success")
    return redirect(url_for("connections.index"), code=303)


def _field_error(form, exc: ValueError) -> None:
    """Show a refusal from the connection's own checks beside the input at fault."""
    name = getattr(exc, "field", None)
    for prefix in ("credential_", "option_"):
        input_ = getattr(form, f"{prefix}{name}", None) if name else None
        if input_ is not None:
            input_.errors = [*input_.errors, str(exc)]
            return
    form.form_errors.append(str(exc))


def _secret_page(connection: Connection, secret: str, what: str):
    """The only page that ever shows this secret: not stored by the browser or a proxy."""
    response = make_response(
        render_template(
            "connections/secret.html",
            connection=connection,
            secret=secret,
            what=what,
            url=connections.webhook_url(connection),
        ),
        201 if what == "connected" else 200,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
