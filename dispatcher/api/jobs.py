"""/api/v1/jobs: add, change, split, keep or delegate micro-jobs, and move them along.

Every state change goes through the service layer (planning.tree, dispatch.service), which
goes through the lifecycle; these views only check input and pick the owner's rows.
"""

from __future__ import annotations

from flask import current_app, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from dispatcher import connections
from dispatcher.api import auth, problems
from dispatcher.dispatch import service
from dispatcher.errors import NotFound
from dispatcher.extensions import db
from dispatcher.models import Event, Goal, MicroJob
from dispatcher.people import delegate as delegate_to
from dispatcher.planning import tree
from dispatcher.schemas.common import MAX_INT
from dispatcher.schemas.jobs import (
    CancelResultSchema,
    DelegateSchema,
    DispatchSchema,
    EventSchema,
    JobCreateSchema,
    JobSchema,
    JobUpdateSchema,
    SplitSchema,
)
from dispatcher.scoping import get_owned

blp = Blueprint(
    "Jobs",
    __name__,
    url_prefix="/api/v1",
    description="Micro-jobs: split them, keep or delegate them, dispatch, retry, cancel.",
)
auth.protect(blp)
problems.install(blp)

NOT_FOUND = "No such job (or not yours)"
CONFLICT = "Not allowed in the job's current state"
TERMS_FIXED = "The job is out at its channel (or paid): its order terms are fixed, cancel first"


def _job(job_id: int) -> MicroJob:
    return get_owned(MicroJob, job_id, auth.owner_id())


def _check_channel(name: str | None, field: str = "channel") -> None:
    registry = current_app.extensions["dispatcher.adapters"]
    if name is not None and name not in registry:
        have = ", ".join(registry.names()) or "none installed"
        problems.field_error(field, f"no channel named {name!r} (have: {have})")


def _check_connection(connection_id: int | None, field: str = "connection_id") -> None:
    """A connection id must be one of the caller's (another owner's is "no such")."""
    if connection_id is None:
        return
    try:
        connections.get(connection_id, auth.owner_id())
    except NotFound:
        problems.field_error(field, f"no connection {connection_id} (or not yours)")


def _check_fields(data: dict, job: MicroJob | None = None) -> None:
    """Checks that need more than one field, or the installed adapters."""
    _check_channel(data.get("channel"))
    _check_connection(data.get("connection_id"))
    mode = data.get("mode", job.mode if job else None)
    channel = data.get("channel", job.channel if job else None)
    if mode == "delegate" and not channel:
        problems.field_error("channel", "pick a channel to delegate to")
    price = data.get("price_cents", job.price_cents if job else 0)
    assignments = data.get("assignments", job.assignments if job else 1)
    if price * assignments > MAX_INT:
        problems.field_error("price_cents", "price x assignments is too large")


@blp.route("/goals/<int:goal_id>/jobs", methods=["POST"])
@blp.arguments(JobCreateSchema)
@blp.response(201, JobSchema)
@blp.alt_response(404, description="No such goal (or not yours)")
def create_job(data: dict, goal_id: int):
    """Add a job to a goal

    At the top level, or under `parent_id` (a job of the same goal).
    """
    owner_id = auth.owner_id()
    goal = get_owned(Goal, goal_id, owner_id)
    parent = None
    parent_id = data.pop("parent_id", None)
    if parent_id is not None:
        try:
            parent = get_owned(MicroJob, parent_id, owner_id)
        except NotFound:
            parent = None
        if parent is None or parent.goal_id != goal.id:
            problems.field_error("parent_id", f"no job {parent_id} in goal {goal.id}")
    _check_fields(data)
    job = tree.add_job(goal, parent=parent, actor=auth.ACTOR, **data)
    return job, {"Location": url_for("Jobs.JobItem", job_id=job.id)}


@blp.route("/jobs/<int:job_id>")
class JobItem(MethodView):
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    def get(self, job_id: int):
        """Get a job"""
        return _job(job_id)

    @blp.arguments(JobUpdateSchema)
    @blp.response(200, JobSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.alt_response(409, description=TERMS_FIXED)
    @blp.alt_response(
        422, description="Invalid fields, or a budget envelope below what its subtree holds"
    )
    def patch(self, data: dict, job_id: int):
        """Change a job (only the fields sent)

        Price, assignments, channel, channel options and mode are fixed once money is
        reserved for the job at its channel (queued through accepted) or paid: cancel it
        first. A budget envelope cannot go below what its subtree has reserved and spent.
        """
        job = _job(job_id)
        _check_fields(data, job)
        return tree.update_job(job, actor=auth.ACTOR, **data)

    @blp.response(204)
    @blp.alt_response(404, description=NOT_FOUND)
    @blp.alt_response(
        409,
        description="Something in the subtree is under way, holds money (reserved or spent) "
        "or still owes its platform a call (an order, a cancel, a review decision)",
    )
    def delete(self, job_id: int):
        """Delete a job and its whole subtree

        Refused while any job in it has started, holds money, or owes its platform a call;
        the timeline events stay (with the job reference cleared).
        """
        tree.delete_job(_job(job_id), actor=auth.ACTOR)


@blp.route("/jobs/<int:job_id>/split", methods=["POST"])
@blp.arguments(SplitSchema)
@blp.response(201, JobSchema(many=True))
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description="Only draft or ready jobs split")
def split(data: dict, job_id: int):
    """Split a job into children, one per title, in order"""
    return tree.split_job(_job(job_id), data["titles"], actor=auth.ACTOR)


@blp.route("/jobs/<int:job_id>/delegate", methods=["POST"])
@blp.arguments(DelegateSchema)
@blp.response(200, JobSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=TERMS_FIXED)
def delegate(data: dict, job_id: int):
    """Mark a job to delegate to one of your connections

    `connection_id` picks the connection; `channel` alone (an adapter's name) picks your
    connection of that channel. A connection that is not yours is 422, like a missing one.
    """
    job = _job(job_id)
    _check_channel(data.get("channel"))
    _check_connection(data.get("connection_id"))
    if data.get("connection_id") is None and not connections.for_adapter(
        auth.owner_id(), data["channel"]
    ):
        problems.field_error("channel", f"no {data['channel']} connection yet: connect it first")
    return delegate_to.set_mode(
        job,
        "delegate",
        channel=data.get("channel"),
        channel_options=data["channel_options"],
        connection_id=data.get("connection_id"),
        person_id=data["person_id"],
        actor=auth.ACTOR,
    )


@blp.route("/jobs/<int:job_id>/keep", methods=["POST"])
@blp.response(200, JobSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=TERMS_FIXED)
def keep(job_id: int):
    """Mark a job as mine to do"""
    return delegate_to.set_mode(_job(job_id), "keep", actor=auth.ACTOR)


def _act(job_id: int, action: str) -> MicroJob:
    job = _job(job_id)
    tree.act(job, action, actor=auth.ACTOR)
    return job


@blp.route("/jobs/<int:job_id>/start", methods=["POST"])
@blp.response(200, JobSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=CONFLICT)
def start(job_id: int):
    """Start a job I keep (draft or ready -> in_progress)"""
    return _act(job_id, "start")


@blp.route("/jobs/<int:job_id>/complete", methods=["POST"])
@blp.response(200, JobSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=CONFLICT)
def complete(job_id: int):
    """Mark a job I keep done"""
    return _act(job_id, "complete")


@blp.route("/jobs/<int:job_id>/reopen", methods=["POST"])
@blp.response(200, JobSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=CONFLICT)
def reopen(job_id: int):
    """Reopen a done job (done -> ready)"""
    return _act(job_id, "reopen")


@blp.route("/jobs/<int:job_id>/dispatch", methods=["POST"])
@blp.response(202, DispatchSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description="Over budget, not delegated, or not draft/ready")
def dispatch(job_id: int):
    """Dispatch a delegated job to its channel

    Reserves price x assignments against the budget, stages a dispatch and queues the job;
    a worker then places the order with the channel.
    """
    return service.dispatch_job(_job(job_id), actor=auth.ACTOR)


@blp.route("/jobs/<int:job_id>/retry", methods=["POST"])
@blp.response(202, DispatchSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description="Only failed, expired, rejected or cancelled jobs retry")
def retry(job_id: int):
    """Send a failed, expired, rejected or cancelled job out again (under a new key)"""
    return service.retry_job(_job(job_id), actor=auth.ACTOR)


@blp.route("/jobs/<int:job_id>/cancel", methods=["POST"])
@blp.response(200, CancelResultSchema)
@blp.alt_response(404, description=NOT_FOUND)
@blp.alt_response(409, description=CONFLICT)
def cancel(job_id: int):
    """Cancel a job, and its order at the platform when the channel can"""
    job = _job(job_id)
    note = service.cancel_job(job, actor=auth.ACTOR)
    return {"job": job, "note": note}


@blp.route("/jobs/<int:job_id>/events")
@blp.response(200, EventSchema(many=True))
@blp.alt_response(404, description=NOT_FOUND)
def events(job_id: int):
    """The job's timeline, oldest first"""
    job = _job(job_id)
    return db.session.scalars(
        select(Event).where(Event.job_id == job.id).order_by(Event.created_at, Event.id)
    ).all()
