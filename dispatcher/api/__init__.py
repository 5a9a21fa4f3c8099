"""JSON API under /api/v1 (flask-smorest + marshmallow), OpenAPI at /api/openapi.json,
a self-contained docs page at /api/docs."""

from __future__ import annotations

from http import HTTPStatus

from flask import Flask
from flask_smorest import Api

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "dsp_<random>",
    "description": (
        "A personal API token: `Authorization: Bearer dsp_...`. Make one on your account "
        'page (/account, "API tokens"), or with POST /api/v1/tokens (email and password).'
    ),
}
SESSION = {
    "type": "apiKey",
    "in": "cookie",
    "name": "session",
    "description": "The web session of a logged-in owner: GET requests only.",
}


def init_api(app: Flask, api: Api) -> None:
    """Register the API blueprints, the security schemes and the docs page."""
    from dispatcher.api import connections, contract, deliveries, docs, goals, jobs, people, tokens
    from dispatcher.api.teammate_webhooks import document as document_teammate_webhooks
    from dispatcher.extensions import csrf

    _document_errors(api)
    contract.install(api)
    api.spec.components.security_scheme("bearerAuth", BEARER)
    api.spec.components.security_scheme("sessionCookie", SESSION)
    api.spec.options["security"] = [{"bearerAuth": []}, {"sessionCookie": []}]
    for blp in (goals.blp, jobs.blp, deliveries.blp, tokens.blp, connections.blp, people.blp):
        csrf.exempt(blp)  # bearer tokens; unsafe methods never take the cookie (see auth)
        api.register_blueprint(blp)
    document_teammate_webhooks(api)
    app.register_blueprint(docs.bp)


def _document_errors(api: Api) -> None:
    """Describe error answers as what they are: application/problem+json Problems."""
    from dispatcher.schemas.common import ProblemSchema

    def response(description: str) -> dict:
        return {
            "description": description,
            "content": {"application/problem+json": {"schema": ProblemSchema}},
        }

    for status in HTTPStatus:
        if status >= 400:
            api.spec.components.response(status.name, response(status.phrase), lazy=True)
    # flask-smorest's own error body and pagination header are never used here: keep them
    # out of the docs (tests check that every $ref still resolves).
    for unused in ("Error", "PaginationMetadata"):
        api.spec.components.schemas.pop(unused, None)
