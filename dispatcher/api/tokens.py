"""/api/v1/tokens: personal API tokens (bootstrap one with email and password)."""

from __future__ import annotations

from flask import abort, current_app, g
from flask_smorest import Blueprint

from dispatcher import auth_tokens
from dispatcher.api import auth, problems
from dispatcher.schemas.tokens import TokenCreatedSchema, TokenCreateSchema, TokenSchema
from dispatcher.security import limits

blp = Blueprint(
    "Tokens",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Personal API tokens. Send one as `Authorization: Bearer dsp_...`. "
        "The secret is shown once, when the token is made; only its hash is kept."
    ),
)
# POST authenticates in the view: it also takes an email and password.
auth.protect(blp, except_methods=frozenset({"POST"}))
problems.install(blp)


def _creator(data: dict) -> int:
    """The owner a new token is for: by password, by token, or by web session (+ CSRF)."""
    if "email" in data:
        owner = auth_tokens.check_login(data["email"], data["password"])
        if owner is None:
            abort(auth.unauthorized("wrong email or password"))
        return owner.id
    owner_id, refusal = auth.identify(allow_session=True)
    if refusal is not None:
        abort(refusal)
    if g.api_auth == "session" and current_app.config.get("WTF_CSRF_ENABLED", True):
        # A cookie alone must not make tokens: a session caller shows the page's CSRF token.
        current_app.extensions["csrf"].protect()
    return owner_id


@blp.route("/tokens")
@blp.response(200, TokenSchema(many=True))
def list_tokens():
    """List my tokens (no secrets)"""
    return auth_tokens.list_tokens(auth.owner_id())


@blp.route("/tokens", methods=["POST"])
@blp.arguments(TokenCreateSchema)
@blp.response(201, TokenCreatedSchema)
@blp.alt_response(401, description="Wrong email or password, or no credentials")
@blp.doc(security=[{}, {"bearerAuth": []}, {"sessionCookie": []}])
@limits.account_limited("token")
def create_token(data: dict):
    """Make a token

    Authenticate with `email` and `password` in the body (so a script can bootstrap), with
    an existing token, or with a logged-in web session (which must send X-CSRFToken). The
    answer holds the secret once; store it then.
    """
    issued = auth_tokens.issue_token(_creator(data), data["name"])
    return issued, {"Cache-Control": "no-store"}


@blp.route("/tokens/<int:token_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(404, description="No such token (or not yours)")
def revoke(token_id: int):
    """Revoke a token; it stops working at once"""
    auth_tokens.revoke_token(auth.owner_id(), token_id)
