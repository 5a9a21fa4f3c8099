"""How errors look over HTTP: problem+json for the API and webhooks, HTML pages elsewhere."""

from __future__ import annotations

from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from dispatcher.errors import (
    BudgetExceeded,
    InvalidChange,
    InvalidTransition,
    NotFound,
    TermsFixed,
    Unsupported,
)

JSON_PREFIXES = ("/api/", "/webhooks/")
#: headers of an HTTP error that its answer keeps
PASSED_HEADERS = ("allow", "retry-after", "www-authenticate")


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or (
        request.accept_mimetypes.best == "application/json"
    )


def problem(status: int, title: str, detail: str = "", **extra):
    """An RFC 9457 problem details response."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def change_status(exc: InvalidChange) -> tuple[int, str]:
    """Status and title of a refused edit: 409 when the job's state is the reason (cancel it
    first), else 422 (the value itself is wrong)."""
    if isinstance(exc, TermsFixed):
        return 409, "Not allowed in this state"
    return 422, "Unprocessable Entity"


def render_error(status: int, title: str, detail: str):
    """An error as the caller reads it: problem+json for the API, else the HTML error page."""
    if wants_json():
        return problem(status, title, detail)
    return render_template("error.html", status=status, title=title, detail=detail), status


def init_app(app: Flask) -> None:
    _render = render_error

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        return _render(404, "Not found", str(exc))

    @app.errorhandler(InvalidTransition)
    def _invalid_transition(exc: InvalidTransition):
        return _render(409, "Not allowed in this state", str(exc))

    @app.errorhandler(InvalidChange)
    def _invalid_change(exc: InvalidChange):
        return _render(*change_status(exc), str(exc))

    @app.errorhandler(BudgetExceeded)
    def _budget(exc: BudgetExceeded):
        return _render(409, "Over budget", str(exc))

    @app.errorhandler(Unsupported)
    def _unsupported(exc: Unsupported):
        return _render(409, "Not supported by this channel", str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if wants_json():
            body = getattr(exc, "data", None) or {}
            extra = {}
            if isinstance(body, dict) and body.get("errors"):
                extra["errors"] = body["errors"]
            response = problem(exc.code or 500, exc.name, exc.description or "", **extra)
        else:
            response = make_response(_render(exc.code or 500, exc.name, exc.description or ""))
        for name, value in exc.get_headers():
            if name.lower() in PASSED_HEADERS:  # a 405 says what is allowed (RFC 9110)
                response.headers[name] = value
        return response
