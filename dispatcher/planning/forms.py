"""Form and JSON input for the planning pages, checked with marshmallow at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range

from dispatcher.models import CADENCE_UNITS
from dispatcher.planning.cadence import MAX_EVERY, MAX_PERIODS
from dispatcher.planning.moves import DIRECTIONS
from dispatcher.planning.outline import TITLE_MAX
from dispatcher.planning.playbook_schema import flatten_errors

PARAM_PREFIX = "p."


class FormError(ValueError):
    """Input that does not validate; `errors` are `field: message` lines for the page."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def _blank_to_none(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = dict(data)
    for key in keys:
        if isinstance(out.get(key), str) and not out[key].strip():
            out[key] = None
    return out


class MoveSchema(Schema):
    """Either a direction (keyboard, buttons) or a new parent and position (drag and drop)."""

    class Meta:
        unknown = EXCLUDE

    direction = fields.String(load_default=None, allow_none=True, validate=OneOf(DIRECTIONS))
    parent_id = fields.Integer(load_default=None, allow_none=True)
    position = fields.Integer(load_default=None, allow_none=True, validate=Range(min=0))

    @validates_schema
    def _one_way(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["direction"] is None and data["position"] is None:
            raise ValidationError("give a direction, or a position (and parent_id)", "position")


class TitleSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    title = fields.String(required=True, validate=Length(1, TITLE_MAX))


class CadenceFormSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    title = fields.String(required=True, validate=Length(1, 150))
    every = fields.Integer(load_default=1, validate=Range(1, MAX_EVERY))
    unit = fields.String(load_default="week", validate=OneOf(CADENCE_UNITS))
    starts_on = fields.Date(required=True)
    count = fields.Integer(load_default=None, allow_none=True, validate=Range(1, MAX_PERIODS))
    until = fields.Date(load_default=None, allow_none=True)


class SavePlaybookSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=Length(1, 60))
    title = fields.String(load_default=None, allow_none=True, validate=Length(max=200))
    description = fields.String(load_default="", validate=Length(max=5000))
    include_root = fields.Boolean(load_default=False)


def load(schema: Schema, data: Mapping[str, Any], blanks: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load input or raise FormError with one line per bad field."""
    try:
        return schema.load(_blank_to_none(data, blanks))
    except ValidationError as exc:
        raise FormError(flatten_errors(exc.messages)) from exc


def param_values(form: Mapping[str, Any], getlist: Any = None) -> dict[str, Any]:
    """The `p.<name>` fields of a playbook form; for a checkbox, the last value sent wins
    (a hidden "false" comes first, the box's "true" after it when ticked)."""
    values: dict[str, Any] = {}
    for key in form:
        if key.startswith(PARAM_PREFIX):
            name = key[len(PARAM_PREFIX) :]
            values[name] = getlist(key)[-1] if getlist is not None else form[key]
    return values
