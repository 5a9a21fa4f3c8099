"""The statuses every API operation really answers, written into the OpenAPI description.

flask-smorest documents what each view declares (its success, 404/409 where written, 422 for
a body) and a catch-all `default`. The catch-all says nothing, so it is switched off and the
statuses that come from the shared machinery are added here, once for every operation:

- 401 for every operation (all need a token or, for reads, a session);
- 404 for every operation with an id in its path (not found, or another owner's);
- 400 and 422 for every operation that takes a body or query (unreadable JSON; bad fields);
- 429 for the operations that are throttled (dispatcher.security.limits);

and a PATCH body is said to need at least one field.

Each refers to the problem+json responses of dispatcher.api._document_errors.
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from flask_smorest import Api

#: (path, method) of the throttled operations
THROTTLED = {("/api/v1/tokens", "post")}


class StatusPlugin(BasePlugin):
    """Adds the shared statuses to each operation as flask-smorest registers it."""

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        if not path or not operations or not path.startswith("/api/v1/"):
            return
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            add = {"401": "UNAUTHORIZED"}
            if "{" in path:
                add["404"] = "NOT_FOUND"
            takes_input = "requestBody" in operation or any(
                isinstance(p, dict) and p.get("in") == "query"
                for p in operation.get("parameters", [])
            )
            if takes_input or method in ("post", "patch", "put"):
                add["400"] = "BAD_REQUEST"
                add["422"] = "UNPROCESSABLE_ENTITY"
            if (path, method) in THROTTLED:
                add["429"] = "TOO_MANY_REQUESTS"
            for status, name in add.items():
                responses.setdefault(status, name)
            if method == "patch":
                _at_least_one_field(operation)


def _at_least_one_field(operation: dict) -> None:
    """A PATCH body must name a field (dispatcher.schemas.common.PatchSchema): say so."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema")
        if schema is not None and "minProperties" not in schema:
            media["schema"] = {"allOf": [schema], "minProperties": 1}


def install(api: Api) -> None:
    """Call before the API blueprints are registered."""
    api.DEFAULT_ERROR_RESPONSE_NAME = None
    plugin = StatusPlugin()
    plugin.init_spec(api.spec)
    api.spec.plugins.append(plugin)
