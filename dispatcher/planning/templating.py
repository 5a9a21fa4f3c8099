"""`{name}` placeholders in playbook titles, briefs and criteria; `{{` and `}}` are braces.

Deliberately not `str.format`: owners write playbooks, and format strings can reach into
attributes (`{x.__class__}`). Here a placeholder is a bare name and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PART = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


class TemplateError(ValueError):
    """A stray brace or a placeholder that is not a plain name."""


def placeholders(template: str) -> list[str]:
    """The names a template uses, in order; raises TemplateError on a malformed one."""
    names: list[str] = []
    for match in _PART.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise TemplateError(
                f"stray {token!r} at character {match.start() + 1}: placeholders look like "
                "{name}; write {{ or }} for a literal brace"
            )
        names.append(match.group(1))
    return names


def show(value: Any) -> str:
    """How a parameter value reads inside a title."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(show(v) for v in value)
    return "" if value is None else str(value)


def render(template: str, scope: Mapping[str, Any]) -> str:
    """Fill the placeholders from `scope`; a missing name raises KeyError."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        if match.group(1) is None:
            raise TemplateError(f"stray {token!r} at character {match.start() + 1}")
        return show(scope[match.group(1)])

    return _PART.sub(replace, template)


def escape(text: str) -> str:
    """Make literal text safe to use as a template (for subtrees saved as playbooks)."""
    return text.replace("{", "{{").replace("}", "}}")
