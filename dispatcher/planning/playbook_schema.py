"""What a playbook file may say, checked with marshmallow, and errors that name file and field.

A playbook (dispatcher/playbooks/*.yaml, or an owner's saved subtree) is:

    name: guest_post                      # the file name without .yaml
    title: Guest post (one a week)
    description: ...
    source: article 002                   # optional: where the breakdown comes from
    parameters:                           # optional
      pitches: {type: integer, default: 12, min: 1, max: 50, description: Sites to pitch}
    jobs:                                 # at least one; nested with `jobs:`
      - title: "Pitch email {n} of {pitches}"
        repeat: pitches                   # an integer or list parameter, or a number
        when: some_flag                   # optional: only if the parameter is truthy
        unless: other_flag                # optional: only if it is not
        brief: ...
        estimate_minutes: 15
        acceptance_criteria: [names the editor]
        deliverable_kind: text            # text | url | file
        mode: delegate                    # undecided | keep | delegate
        channel: [microworkers, mturk]    # suggested channels, first installed one wins
        price: "3.00"                     # in the goal's currency
        assignments: 1
        jobs: [...]

Inside a repeated job (and its children) `{n}` is the 1-based count and, when repeating over a
list parameter, `{item}` the list entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range, Regexp

from dispatcher.errors import DispatcherError
from dispatcher.models import DELIVERABLE_KINDS, MODES
from dispatcher.money import parse_amount
from dispatcher.planning.build import MAX_DEPTH
from dispatcher.planning.templating import TemplateError, placeholders

PARAM_TYPES = ("integer", "string", "text", "list", "boolean")
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,59}$"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
RESERVED_NAMES = ("n", "item")
MAX_REPEAT = 500
LIST_MAX_ITEMS = 500


class PlaybookError(DispatcherError, ValueError):
    """A playbook (or the parameters given to it) is not valid; `errors` lists every problem."""

    def __init__(self, source: str, errors: list[str]):
        self.source = source
        self.errors = errors
        prefix = f"{source}: " if source else ""
        super().__init__("; ".join(f"{prefix}{e}" for e in errors))


def flatten_errors(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested error dict as lines like `jobs[2].estimate_minutes: Not a valid
    integer.`, in document order."""
    out: list[str] = []
    if isinstance(messages, Mapping):
        keys = sorted(messages, key=lambda k: (isinstance(k, str), k if isinstance(k, int) else 0))
        for key in keys:
            if isinstance(key, int):
                sub = f"{path}[{key}]"
            elif key == "_schema":
                sub = path
            else:
                sub = f"{path}.{key}" if path else str(key)
            out.extend(flatten_errors(messages[key], sub))
    elif isinstance(messages, list | tuple):
        for message in messages:
            if isinstance(message, Mapping | list | tuple):
                out.extend(flatten_errors(message, path))
            else:
                out.append(f"{path}: {message}" if path else str(message))
    else:
        out.append(f"{path}: {messages}" if path else str(messages))
    return out


class Amount(fields.Field):
    """A price like 3, 2.5 or "12.50", loaded as integer cents."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("Not a valid amount.")
        try:
            return parse_amount(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"Not a valid amount ({exc}).") from exc


class Channels(fields.Field):
    """One channel name or a list of them, in order of preference; loaded as a list."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(
            isinstance(i, str) and 0 < len(i) <= 60 for i in items
        ):
            raise ValidationError("Give a channel name or a list of channel names.")
        return items


class Repeat(fields.Field):
    """A parameter name or a fixed count."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError("Give a parameter name or a number.")
        if isinstance(value, int):
            if not 1 <= value <= MAX_REPEAT:
                raise ValidationError(f"Must be between 1 and {MAX_REPEAT}.")
            return value
        if isinstance(value, str) and IDENTIFIER.match(value):
            return value
        raise ValidationError("Give a parameter name or a number.")


class ParameterSchema(Schema):
    type = fields.String(required=True, validate=OneOf(PARAM_TYPES))
    label = fields.String(load_default="", validate=Length(max=120))
    description = fields.String(load_default="", validate=Length(max=500))
    default = fields.Raw(load_default=None, allow_none=True)
    min = fields.Integer(load_default=None, allow_none=True)
    max = fields.Integer(load_default=None, allow_none=True)

    @validates_schema
    def _default_fits(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data["type"]
        if kind != "integer" and (data["min"] is not None or data["max"] is not None):
            raise ValidationError("only integer parameters take min and max", "min")
        if data["default"] is None:
            return
        try:
            value_field(kind, data).deserialize(data["default"])
        except ValidationError as exc:
            raise ValidationError(exc.messages, "default") from exc


class Parameters(fields.Field):
    """A mapping of parameter name to its definition."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("Not a valid mapping of parameters.")
        loaded, errors = {}, {}
        for name, definition in value.items():
            if not isinstance(name, str) or not IDENTIFIER.match(name):
                errors[str(name)] = ["Not a valid parameter name (letters, digits, _)."]
            elif name in RESERVED_NAMES:
                errors[name] = [f"{name!r} is reserved inside repeated jobs."]
            else:
                try:
                    loaded[name] = ParameterSchema().load(definition or {})
                except ValidationError as exc:
                    errors[name] = exc.messages
        if errors:
            raise ValidationError(errors)
        return loaded


class JobTemplateSchema(Schema):
    title = fields.String(required=True, validate=Length(1, 300))
    brief = fields.String(load_default="", validate=Length(max=5000))
    repeat = Repeat(load_default=None, allow_none=True)
    when = fields.String(load_default=None, allow_none=True)
    unless = fields.String(load_default=None, allow_none=True)
    estimate_minutes = fields.Integer(load_default=None, allow_none=True, validate=Range(0, 10**5))
    acceptance_criteria = fields.List(
        fields.String(validate=Length(1, 500)), load_default=list, validate=Length(max=50)
    )
    deliverable_kind = fields.String(load_default="text", validate=OneOf(DELIVERABLE_KINDS))
    mode = fields.String(load_default="undecided", validate=OneOf(MODES))
    channel = Channels(load_default=list)
    price = Amount(load_default=0)
    assignments = fields.Integer(load_default=1, validate=Range(1, 1000))
    jobs = fields.List(fields.Nested(lambda: JobTemplateSchema()), load_default=list)


class PlaybookSchema(Schema):
    name = fields.String(required=True, validate=Regexp(NAME_PATTERN))
    title = fields.String(required=True, validate=Length(1, 200))
    description = fields.String(load_default="", validate=Length(max=5000))
    source = fields.String(load_default="", validate=Length(max=500))
    parameters = Parameters(load_default=dict)
    jobs = fields.List(
        fields.Nested(JobTemplateSchema), required=True, validate=Length(min=1, max=500)
    )

    @validates_schema
    def _references(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = reference_errors(data["jobs"], data["parameters"])
        if errors:
            raise ValidationError({"jobs": errors})


def value_field(kind: str, definition: Mapping[str, Any]) -> fields.Field:
    """The marshmallow field that loads one value of a parameter of this type."""
    if kind == "integer":
        low = definition.get("min")
        high = definition.get("max")
        return fields.Integer(validate=Range(0 if low is None else low, high))
    if kind == "boolean":
        return fields.Boolean()
    if kind == "list":
        return ListOfLines()
    if kind == "text":
        return fields.String(validate=Length(max=5000))
    return fields.String(validate=Length(max=200))


class ListOfLines(fields.Field):
    """A list of short strings, from a list or from text with one entry a line."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            value = value.splitlines()
        if not isinstance(value, list | tuple):
            raise ValidationError("Not a valid list.")
        items = [" ".join(str(v).split()) for v in value if isinstance(v, str | int)]
        if len(items) != len(value):
            raise ValidationError("Each entry must be text.")
        items = [i for i in items if i]
        if len(items) > LIST_MAX_ITEMS:
            raise ValidationError(f"At most {LIST_MAX_ITEMS} entries.")
        if any(len(i) > 200 for i in items):
            raise ValidationError("Each entry can be at most 200 characters.")
        return items


def reference_errors(
    jobs: Iterable[dict[str, Any]],
    parameters: Mapping[str, Any],
    scope: frozenset[str] = frozenset(),
) -> dict[int, Any]:
    """Placeholders, `repeat`, `when` and `unless` must name parameters in scope."""
    errors: dict[int, Any] = {}
    for index, job in enumerate(jobs):
        problems: dict[str, list[str]] = {}
        inner = set(scope)
        repeat = job.get("repeat")
        if isinstance(repeat, str):
            kind = parameters.get(repeat, {}).get("type")
            if kind not in ("integer", "list"):
                problems["repeat"] = [
                    f"{repeat!r} is not an integer or list parameter "
                    f"(have: {', '.join(sorted(parameters)) or 'none'})"
                ]
            inner |= {"n", "item"} if kind == "list" else {"n"}
        elif isinstance(repeat, int):
            inner.add("n")
        for key in ("when", "unless"):
            if job.get(key) and job[key] not in parameters:
                problems[key] = [f"unknown parameter {job[key]!r}"]
        visible = set(parameters) | inner
        texts = [("title", job["title"]), ("brief", job.get("brief", ""))]
        texts += [
            (f"acceptance_criteria[{i}]", c)
            for i, c in enumerate(job.get("acceptance_criteria", []))
        ]
        for key, text in texts:
            try:
                missing = [p for p in placeholders(text) if p not in visible]
            except TemplateError as exc:
                problems.setdefault(key, []).append(str(exc))
                continue
            if missing:
                problems.setdefault(key, []).append(
                    f"unknown placeholder {{{missing[0]}}} "
                    f"(known here: {', '.join(sorted(visible)) or 'none'})"
                )
        child_errors = reference_errors(job.get("jobs", []), parameters, frozenset(inner))
        if child_errors:
            problems["jobs"] = child_errors  # type: ignore[assignment]
        if problems:
            errors[index] = problems
    return errors


def nesting_depth(data: Any) -> int:
    """How deeply `jobs:` lists nest, without recursion (checked before marshmallow recurses)."""
    deepest = 0
    stack = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping) and isinstance(node.get("jobs"), list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in node["jobs"])
    return deepest


def validate_playbook(data: Any, source: str) -> dict[str, Any]:
    """Load a playbook definition, or raise PlaybookError naming `source` and each field."""
    if not isinstance(data, Mapping):
        raise PlaybookError(source, ["the playbook must be a mapping with name, title and jobs"])
    if nesting_depth(data) > MAX_DEPTH:
        raise PlaybookError(source, [f"jobs: nested more than {MAX_DEPTH} levels deep"])
    try:
        return PlaybookSchema().load(data)
    except ValidationError as exc:
        raise PlaybookError(source, flatten_errors(exc.messages)) from exc
