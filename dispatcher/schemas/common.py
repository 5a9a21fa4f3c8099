"""Field types and limits shared by every resource schema."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

#: Integer columns are 32-bit on PostgreSQL: anything larger would fail in the database.
MAX_INT = 2**31 - 1


#: what Text strips from both ends: the blanks a JSON Schema pattern can name exactly
BLANKS = " \t\r\n"
#: OpenAPI patterns of Text: no NUL anywhere; and, when it must not be empty, one non-blank
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^ \\t\\r\\n\\u0000][^\\u0000]*$"


class Text(fields.String):
    """A string, stripped of blanks, without NUL characters (PostgreSQL refuses them in text).

    The OpenAPI description says so too, as a pattern: no NUL, and for a text that must not
    be empty one character that is not a blank, so a client knows "   " is refused.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        validators = kwargs.get("validate")
        validators = validators if isinstance(validators, list | tuple) else [validators]
        needed = any(isinstance(v, validate.Length) and (v.min or 0) >= 1 for v in validators)
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata.setdefault("pattern", NOT_BLANK if needed else NO_NUL)
        kwargs["metadata"] = metadata
        super().__init__(*args, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip(BLANKS)
        if "\x00" in text:
            raise ValidationError("must not contain NUL characters")
        return text


def title_field(max_length: int, **kwargs: Any) -> Text:
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def cents_field(**kwargs: Any) -> fields.Integer:
    """An amount in integer cents: never a float, never negative."""
    kwargs.setdefault("metadata", {"description": "integer cents"})
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_INT), **kwargs)


def count_field(minimum: int = 0, maximum: int = MAX_INT, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=maximum), **kwargs)


class StrictBoolean(fields.Boolean):
    """true or false, nothing else: 0, 1, "yes" and "true" are refused (422), not guessed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class PatchSchema(Schema):
    """A PATCH body: changes only the fields it names, and must name at least one."""

    @validates_schema(pass_original=True)
    def _not_empty(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        if isinstance(original, dict) and not original:
            raise ValidationError("send at least one field to change", "_schema")


class Currency(Text):
    """A three-letter ISO 4217 code, upper-cased."""

    def __init__(self, **kwargs: Any):
        super().__init__(
            validate=validate.Regexp(r"^[A-Za-z]{3}$", error="must be a 3-letter currency code"),
            metadata={"example": "USD", "pattern": "^[A-Za-z]{3}$"},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).upper()


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error answer."""

    type = fields.String(metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Unprocessable Entity"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String()
    errors = fields.Dict(
        metadata={
            "description": "for 422: messages per location and field",
            "example": {"json": {"title": ["Missing data for required field."]}},
        }
    )
