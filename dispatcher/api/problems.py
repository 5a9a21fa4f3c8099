"""Error answers of the API blueprints: problem+json that keeps the per-field messages.

The app-wide handler (dispatcher/http_errors.py) already turns domain errors into problems;
these blueprint handlers add what only the API needs: webargs' 422 `messages` passed on as
`errors`, a ValueError from a service reported as 422 with its message, and a refused edit
(InvalidChange) with its field in `errors` too.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Response
from flask_smorest import Blueprint, abort
from werkzeug.exceptions import HTTPException, UnprocessableEntity

from dispatcher.errors import InvalidChange
from dispatcher.http_errors import change_status, problem

INVALID_FIELDS = "Some fields are not valid: see errors."


def field_error(field: str, message: str, location: str = "json") -> NoReturn:
    """Answer 422 for one input field, shaped like a schema validation error."""
    abort(422, messages={location: {field: [message]}})


def _http_problem(exc: HTTPException) -> Response:
    data = getattr(exc, "data", None) or {}
    errors = data.get("messages") or data.get("errors")
    detail = data.get("message") or (INVALID_FIELDS if errors else exc.description or "")
    extra = {"errors": errors} if errors else {}
    response = problem(exc.code or 500, exc.name, detail, **extra)
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    for name, value in exc.get_headers():
        if name.lower() in ("www-authenticate", "allow", "retry-after"):
            response.headers[name] = value
    return response


def _value_problem(exc: ValueError) -> Response:
    return problem(422, UnprocessableEntity().name, str(exc))


def _change_problem(exc: InvalidChange) -> Response:
    """A refused edit, with its field named like a schema error: 409 when the job's state
    is the reason (cancel it first), else 422."""
    return problem(*change_status(exc), str(exc), errors={"json": {exc.field: [str(exc)]}})


def install(blp: Blueprint) -> None:
    """Give an API blueprint its error handlers (called once, when the module is imported)."""
    blp.register_error_handler(HTTPException, _http_problem)
    blp.register_error_handler(ValueError, _value_problem)
    blp.register_error_handler(InvalidChange, _change_problem)
