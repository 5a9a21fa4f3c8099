"""The HTML forms (Flask-WTF): accounts, goals, jobs and reviews.

Each form only checks and converts what people type (money as text, one item per line); the
services in dispatcher/planning, dispatcher/dispatch (review included) decide what is
allowed. Every form carries the CSRF token (CSRFProtect checks it on every POST).
"""

from __future__ import annotations

import math
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    Field,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from dispatcher.models import DELIVERABLE_KINDS
from dispatcher.money import parse_amount
from dispatcher.security.passwords import MIN_LENGTH, password_problem

#: The biggest amount a money field takes (10 million), so cents always fit the columns.
MAX_CENTS = 1_000_000_000
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
RATINGS = [SelectChoice("", "No rating")] + [SelectChoice(str(n), "★" * n) for n in range(5, 0, -1)]


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def amount_text(cents: int | None) -> str:
    """Cents as the plain text a money field shows ("120.50"), for defaults."""
    whole, part = divmod(cents or 0, 100)
    return f"{whole}.{part:02d}"


def lines(text: str | None) -> list[str]:
    """One item per non-blank line, trimmed (criteria, split titles)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class MoneyField(StringField):
    """An amount typed as text ("120.50", "1,200"); after validation `cents` holds it
    (None when left blank)."""

    cents: int | None = None

    def pre_validate(self, form: FlaskForm) -> None:
        text = (self.data or "").strip()
        self.cents = None
        if not text:
            return
        try:
            cents = parse_amount(text)
        except ValueError:
            raise ValidationError(f"“{text}” is not an amount: write it like 120.50") from None
        if cents > MAX_CENTS:
            raise ValidationError("that is more than 10,000,000.00")
        self.cents = cents


class LinesField(TextAreaField):
    """A textarea read as one item per line."""

    @property
    def items(self) -> list[str]:
        return lines(self.data)


def _finite(form: FlaskForm, field: Field) -> None:
    if field.data is not None and not math.isfinite(field.data):
        raise ValidationError("give an ordinary number")


# --- accounts ---------------------------------------------------------------------------------


def _strong(form: FlaskForm, field: Field) -> None:
    """Refuse weak passwords (dispatcher.security.passwords), also the owner's email or name."""
    from flask_login import current_user

    email = getattr(getattr(form, "email", None), "data", None) or getattr(
        current_user, "email", ""
    )
    name = getattr(getattr(form, "name", None), "data", None) or getattr(current_user, "name", "")
    problem = password_problem(field.data or "", email=email or "", name=name or "")
    if problem:
        raise ValidationError(problem)


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label,
        description=f"at least {MIN_LENGTH} characters; a few unrelated words work well",
        validators=[InputRequired("choose a password"), _strong],
    )


class SignupForm(FlaskForm):
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired("give your email"),
            Length(max=254),
            Regexp(EMAIL, message="that does not look like an email address"),
        ],
    )
    name = StringField(
        "Your name", filters=[_strip], validators=[DataRequired("give your name"), Length(max=120)]
    )
    password = _new_password("Password")
    confirm = PasswordField(
        "Password again",
        validators=[
            InputRequired("type the password again"),
            EqualTo("password", message="the two passwords differ"),
        ],
    )


class LoginForm(FlaskForm):
    email = StringField("Email", filters=[_strip], validators=[DataRequired("give your email")])
    password = PasswordField("Password", validators=[InputRequired("give your password")])
    next = HiddenField()


class PasswordChangeForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired("give it")])
    password = _new_password("New password")
    confirm = PasswordField(
        "New password again",
        validators=[EqualTo("password", message="the two passwords differ")],
    )


class ForgotForm(FlaskForm):
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired("give your email"),
            Length(max=254),
            Regexp(EMAIL, message="that does not look like an email address"),
        ],
    )


class ResetForm(FlaskForm):
    password = _new_password("New password")
    confirm = PasswordField(
        "New password again",
        validators=[EqualTo("password", message="the two passwords differ")],
    )


class TokenForm(FlaskForm):
    name = StringField(
        "Token name",
        filters=[_strip],
        description="what will use it, e.g. deploy script",
        validators=[DataRequired("give the token a name"), Length(max=120)],
    )


# --- goals ------------------------------------------------------------------------------------


class GoalForm(FlaskForm):
    title = StringField(
        "Goal",
        filters=[_strip],
        validators=[DataRequired("name the goal"), Length(max=200)],
        description="e.g. 10k visits a month by June",
    )
    why = TextAreaField("Why it matters", filters=[_strip], validators=[Length(max=5000)])
    metric_name = StringField(
        "Metric", filters=[_strip], validators=[Length(max=120)], description="e.g. visits/month"
    )
    baseline = FloatField("Baseline", validators=[Optional(), _finite])
    target = FloatField("Target", validators=[Optional(), _finite])
    deadline = DateField("Deadline", validators=[Optional()])
    budget = MoneyField("Budget", filters=[_strip], description="e.g. 120.50")
    currency = StringField(
        "Currency",
        default="USD",
        filters=[lambda v: _strip(v).upper() if isinstance(v, str) else v],
        validators=[
            DataRequired("give a currency"),
            Regexp(r"^[A-Z]{3}$", message="a 3-letter code like USD or EUR"),
        ],
    )
    personal = BooleanField("Personal goal (never sent to paid channels)")

    def fields_for_service(self) -> dict[str, Any]:
        """The goal's columns as dispatcher.planning.tree takes them."""
        return {
            "title": self.title.data,
            "why": self.why.data or "",
            "metric_name": self.metric_name.data or "",
            "baseline": self.baseline.data,
            "target": self.target.data,
            "deadline": self.deadline.data,
            "budget_cents": self.budget.cents or 0,
            "currency": self.currency.data,
            "personal": bool(self.personal.data),
        }


# --- jobs -------------------------------------------------------------------------------------


class TitleForm(FlaskForm):
    """Add one job (at the top of a goal, or under a job)."""

    title = StringField(
        "Title",
        filters=[_strip],
        validators=[DataRequired("give the job a title"), Length(max=300)],
    )


class SplitForm(FlaskForm):
    titles = LinesField(
        "One job per line (indent for sub-jobs)",
        validators=[InputRequired("write at least one title, one per line")],
    )

    def validate_titles(self, field: LinesField) -> None:
        if not field.items:
            raise ValidationError("write at least one title, one per line")
        too_long = [t for t in field.items if len(t) > 300]
        if too_long:
            raise ValidationError(f"keep titles under 300 characters: “{too_long[0][:40]}…”")


class JobForm(FlaskForm):
    title = StringField(
        "Title",
        filters=[_strip],
        validators=[DataRequired("give the job a title"), Length(max=300)],
    )
    brief = TextAreaField("Brief", filters=[_strip], validators=[Length(max=20000)])
    acceptance_criteria = LinesField(
        "Acceptance criteria", description="one per line: how you will judge the work"
    )
    deliverable_kind = SelectField(
        "Deliverable", choices=[SelectChoice(k, k) for k in DELIVERABLE_KINDS], default="text"
    )
    estimate_minutes = IntegerField(
        "Estimate (minutes)",
        validators=[Optional(), NumberRange(min=0, max=100_000, message="0 to 100000 minutes")],
    )
    due_date = DateField("Due", validators=[Optional()])
    price = MoneyField("Price per assignment", filters=[_strip], description="e.g. 12.50")
    assignments = IntegerField(
        "Assignments",
        default=1,
        validators=[
            InputRequired("how many people should do it (1 or more)"),
            NumberRange(min=1, max=1000, message="1 to 1000"),
        ],
    )
    free = BooleanField("Free: it pays nothing (a paid channel refuses a job with no price)")

    def validate_free(self, field: BooleanField) -> None:
        if field.data and "price" in self and self.price.cents:
            raise ValidationError("a free job has no price: clear the price or untick Free")

    def fields_for_service(self, *, money: bool) -> dict[str, Any]:
        """The job's columns as dispatcher.planning.tree takes them; price and assignments
        only when `money` (they are fixed once money is reserved)."""
        fields: dict[str, Any] = {
            "title": self.title.data,
            "brief": self.brief.data or "",
            "acceptance_criteria": self.acceptance_criteria.items,
            "deliverable_kind": self.deliverable_kind.data,
            "estimate_minutes": self.estimate_minutes.data,
            "due_date": self.due_date.data,
        }
        if money:
            fields["price_cents"] = self.price.cents or 0
            fields["assignments"] = self.assignments.data
            fields["free"] = bool(self.free.data)
        return fields


class ModeForm(FlaskForm):
    """Keep it (I do it) or delegate it, and to which channel."""

    mode = SelectField(
        "Who does it",
        choices=[
            SelectChoice("undecided", "Undecided"),
            SelectChoice("keep", "I do it"),
            SelectChoice("delegate", "Delegate"),
        ],
    )
    #: one of the owner's connections (its id); an adapter's name picks the owner's
    #: connection of that adapter
    channel = SelectField("Channel", choices=[], validate_choice=False)
    #: one of the owner's people (their id), offered beside the channels
    person = SelectField("Person", choices=[], validate_choice=False)

    def __init__(
        self,
        *args: Any,
        channels: list[tuple[str, str, str]] | tuple = (),
        people: list[tuple[str, str]] | tuple = (),
        **kwargs: Any,
    ):
        """`channels`: (connection id, label, adapter name) of each of the owner's connections;
        `people`: (person id, name) of each of their people."""
        super().__init__(*args, **kwargs)
        self.channel.choices = [SelectChoice("", "— channel —")] + [
            SelectChoice(value, label) for value, label, _ in channels
        ]
        self.person.choices = [SelectChoice("", "— nobody named —")] + [
            SelectChoice(value, label) for value, label in people
        ]
        self._by_value = {value: value for value, _, _ in channels}
        for value, _, adapter in reversed(list(channels)):
            self._by_value.setdefault(adapter, value)

    def validate_channel(self, field: SelectField) -> None:
        if self.mode.data == "delegate":
            if not field.data:
                raise ValidationError("pick a channel to delegate to")
            if field.data not in self._by_value:
                raise ValidationError(
                    f"no connection “{field.data}”: connect the channel first (Connections)"
                )

    @property
    def connection_id(self) -> int | None:
        """The connection picked, when delegating."""
        value = self._by_value.get(self.channel.data or "")
        return int(value) if value else None

    @property
    def person_id(self) -> int | None:
        """The person picked (the service checks they are the owner's)."""
        value = (self.person.data or "").strip()
        return int(value) if value.isdigit() else None

    def validate_person(self, field: SelectField) -> None:
        value = (field.data or "").strip()
        if value and not value.isdigit():
            raise ValidationError("pick one of your people")


# --- reviews ----------------------------------------------------------------------------------


class AcceptForm(FlaskForm):
    payout = MoneyField("Pay", filters=[_strip], description="blank pays the full price")
    rating = SelectField("Rating", choices=RATINGS, default="")

    @property
    def rating_value(self) -> int | None:
        return int(self.rating.data) if self.rating.data else None


class RevisionForm(FlaskForm):
    feedback = TextAreaField(
        "What should change",
        filters=[_strip],
        validators=[DataRequired("say what should change"), Length(max=5000)],
    )


class RejectForm(FlaskForm):
    reason = TextAreaField(
        "Reason (the worker sees it)",
        filters=[_strip],
        validators=[DataRequired("give a reason: the worker sees it"), Length(max=5000)],
    )


# --- connections ------------------------------------------------------------------------------


class ConnectionForm(FlaskForm):
    """Connect a channel: a label, then the adapter's own credential and option fields
    (added per adapter by `connection_form`). Credentials are password inputs, so a page
    never sends a stored or typed secret back to the browser."""

    label = StringField("Name", filters=[_strip], validators=[Length(max=120)])


def connection_form(
    adapter_cls: Any, *, require_credentials: bool = True, **kwargs: Any
) -> ConnectionForm:
    """A ConnectionForm with `adapter_cls.credential_fields` (masked) and `option_fields`."""

    class Form(ConnectionForm):
        pass

    for name in adapter_cls.credential_fields:
        checks = [DataRequired(f"{name.replace('_', ' ')} is required")]
        setattr(
            Form,
            f"credential_{name}",
            PasswordField(
                name.replace("_", " ").capitalize(),
                filters=[_strip],
                validators=[*(checks if require_credentials else [Optional()]), Length(max=500)],
                description="stored encrypted; never shown again",
            ),
        )
    for name in adapter_cls.option_fields:
        setattr(
            Form,
            f"option_{name}",
            StringField(
                name.replace("_", " ").capitalize(),
                filters=[_strip],
                validators=[Optional(), Length(max=500)],
            ),
        )
    form = Form(**kwargs)
    form.credential_names = tuple(adapter_cls.credential_fields)
    form.option_names = tuple(adapter_cls.option_fields)
    return form


def connection_values(form: ConnectionForm) -> tuple[dict[str, str], dict[str, str]]:
    """(credentials, options) as typed; blank ones left out."""
    credentials = {n: getattr(form, f"credential_{n}").data or "" for n in form.credential_names}
    options = {n: getattr(form, f"option_{n}").data for n in form.option_names}
    return (
        {k: v for k, v in credentials.items() if v},
        {k: v for k, v in options.items() if v},
    )


# --- people -----------------------------------------------------------------------------------


class PersonForm(FlaskForm):
    """A teammate or regular freelancer; the rules (email, rate, endpoint) are the directory
    service's, so the page and the API refuse the same input with the same words."""

    name = StringField("Name", filters=[_strip], validators=[DataRequired("give a name")])
    email = StringField("Email", filters=[_strip], validators=[Optional(), Length(max=254)])
    rate = MoneyField("Rate per job", description="what you pay them for a job without a price")
    currency = StringField(
        "Currency",
        default="USD",
        filters=[_strip],
        validators=[Regexp(r"^[A-Za-z]{3}$", message="a 3-letter currency code, like USD")],
    )
    slack_handle = StringField("Slack handle", filters=[_strip], validators=[Length(max=120)])
    trello_handle = StringField("Trello username", filters=[_strip], validators=[Length(max=120)])
    asana_handle = StringField("Asana user", filters=[_strip], validators=[Length(max=120)])
    endpoint_url = StringField(
        "Their endpoint",
        filters=[_strip],
        description="their own system's address, for the webhook channel",
        validators=[Length(max=1000)],
    )
    notes = TextAreaField("Notes", filters=[_strip])

    def fields_for_service(self) -> dict[str, Any]:
        return {
            "name": self.name.data or "",
            "email": self.email.data or "",
            "rate_cents": self.rate.cents,
            "currency": (self.currency.data or "USD").upper(),
            "slack_handle": self.slack_handle.data or "",
            "trello_handle": self.trello_handle.data or "",
            "asana_handle": self.asana_handle.data or "",
            "endpoint_url": self.endpoint_url.data or "",
            "notes": self.notes.data or "",
        }


class PaymentForm(FlaskForm):
    """Record a payment for accepted work; `paid_before` is what the page showed as paid,
    so a second click of the same form is refused instead of paying twice."""

    amount = MoneyField("Amount", validators=[DataRequired("give the amount paid")])
    paid_before = IntegerField(
        "Paid before", validators=[InputRequired(), NumberRange(min=0, max=MAX_CENTS)]
    )

    def validate_amount(self, field: MoneyField) -> None:
        if field.cents is not None and field.cents <= 0:
            raise ValidationError("the amount must be more than 0")
