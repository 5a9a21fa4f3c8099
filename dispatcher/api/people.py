"""/api/v1/people: the owner's people (the People page's twin; same directory rules), their
scorecards, and recording pay for a person's accepted work."""

from __future__ import annotations

from dataclasses import asdict

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from dispatcher.api import auth, problems
from dispatcher.errors import NotFound
from dispatcher.extensions import db
from dispatcher.models import Assignment, MicroJob, Person
from dispatcher.people import directory, pay
from dispatcher.people.scorecard import Scorecard, scorecards
from dispatcher.schemas.people import (
    AssignmentSchema,
    PaymentSchema,
    PersonCreateSchema,
    PersonSchema,
    PersonUpdateSchema,
)
from dispatcher.scoping import get_owned

blp = Blueprint(
    "People",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Your teammates and regular freelancers: a job can go to one of them by name. Each "
        "comes with a scorecard computed from the work given to them."
    ),
)
auth.protect(blp)
problems.install(blp)

NOT_FOUND = "No such person (or not yours)"


def _card(card: Scorecard) -> dict:
    out = {k: v for k, v in asdict(card).items() if not k.startswith("_")}
    turnaround = out.pop("average_turnaround")
    out["average_turnaround_seconds"] = turnaround.total_seconds() if turnaround else None
    return out


class _Shown:
    """A person as the API shows them: their columns, and their scorecard beside."""

    def __init__(self, person: Person, card: Scorecard):
        self._person = person
        self.scorecard = _card(card)

    def __getattr__(self, name: str):
        return getattr(self._person, name)


def _with_cards(people: list[Person]) -> list[_Shown]:
    """The people with their scorecards, in three queries however many they are."""
    cards = scorecards(auth.owner_id(), [p.id for p in people])
    return [_Shown(person, cards[person.id]) for person in people]


def _mine(person_id: int) -> Person:
    return directory.get(person_id, auth.owner_id())


@blp.route("/people")
class People(MethodView):
    @blp.response(200, PersonSchema(many=True))
    def get(self):
        """List my people (archived ones last), each with their scorecard"""
        owner = auth.owner_id()
        people = directory.people_of(owner) + directory.people_of(owner, archived=True)
        return _with_cards(people)

    @blp.arguments(PersonCreateSchema)
    @blp.response(201, PersonSchema)
    def post(self, data: dict):
        """Add a person

        A malformed email, an endpoint that is not an http(s) URL, or a negative rate is 422
        with the field named.
        """
        person = directory.create(auth.owner_id(), **data)
        return _with_cards([person])[0], {
            "Location": url_for("People.PersonItem", person_id=person.id)
        }


@blp.route("/people/<int:person_id>")
class PersonItem(MethodView):
    @blp.response(200, PersonSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    def get(self, person_id: int):
        """One person, with their scorecard"""
        return _with_cards([_mine(person_id)])[0]

    @blp.arguments(PersonUpdateSchema)
    @blp.response(200, PersonSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    def patch(self, data: dict, person_id: int):
        """Change a person (only the fields sent); `archived: true` archives them

        An archived person leaves the pickers; their history and scorecard stay.
        """
        person = _mine(person_id)
        archived = data.pop("archived", None)
        if data:
            directory.update(person, **data)
        if archived is not None:
            directory.archive(person, archived)
        return _with_cards([person])[0]


@blp.route("/jobs/<int:job_id>/assignments/<int:assignment_id>/payments", methods=["POST"])
@blp.arguments(PaymentSchema)
@blp.response(200, AssignmentSchema)
@blp.alt_response(404, description="No such job or assignment (or not yours)")
@blp.alt_response(
    409,
    description="The work is not accepted, a payment was recorded since paid_before_cents, "
    "or the amount would overspend a budget",
)
def record_payment(data: dict, job_id: int, assignment_id: int):
    """Record a payment for accepted work (a teammate with no rate, a bonus)

    The amount is charged to the job's budget as spent and added to the assignment's
    `paid_cents` (which the person's scorecard counts).
    """
    job = get_owned(MicroJob, job_id, auth.owner_id())
    place = db.session.get(Assignment, assignment_id)
    if place is None or place.job_id != job.id:
        raise NotFound(f"assignment {assignment_id} not found")
    return pay.record_payment(
        place, data["amount_cents"], auth.ACTOR, paid_before=data["paid_before_cents"]
    )
