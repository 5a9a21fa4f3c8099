"""The goals list and one goal's page: its numbers and its tree of jobs.

The tree and the rollups come from dispatcher.planning.tree; the view only shows them. Forms
that fail come back on the same page with their errors and what was typed (status 400);
refusals from the services (over budget, a state that does not allow it) come back as a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import Field

from dispatcher.dispatch import service as dispatch_service
from dispatcher.errors import InvalidChange
from dispatcher.extensions import db
from dispatcher.forms import GoalForm, ModeForm, SplitForm, TitleForm, amount_text
from dispatcher.models import Goal, MicroJob
from dispatcher.people import directory
from dispatcher.planning import folding, tree
from dispatcher.scoping import get_owned, owned
from dispatcher.today import waiting_for
from dispatcher.web.common import REFUSALS, actor, channel_choices, channel_names, owner_id, refuse
from dispatcher.web.jobview import Button, job_buttons

bp = Blueprint("goals", __name__)


def goal_url(goal: Goal, job_id: int | None = None) -> str:
    """The goal page at `job_id`, with the job shown (its ancestors and itself open)."""
    if job_id is None:
        return url_for("goals.show", goal_id=goal.id)
    return url_for("goals.show", goal_id=goal.id, open=str(job_id), _anchor=f"job-{job_id}")


@bp.get("/goals")
@login_required
def index():
    return _render_index(GoalForm())


def _render_index(form: GoalForm, status: int = 200):
    goals = db.session.scalars(owned(Goal, owner_id()).order_by(Goal.created_at.desc())).all()
    rows = [(goal, tree.goal_progress(goal)) for goal in goals]
    return render_template(
        "goals/index.html", rows=rows, form=form, channels=[] if rows else channel_names()
    ), status


@bp.post("/goals")
@login_required
def create():
    form = GoalForm()
    if not form.validate_on_submit():
        return _render_index(form, 400)
    goal = tree.create_goal(owner_id(), actor=actor(), **form.fields_for_service())
    flash(f"Goal created: {goal.title}. Now break it into jobs.", "success")
    return redirect(goal_url(goal), code=303)


@bp.get("/goals/<int:goal_id>")
@login_required
def show(goal_id: int):
    goal = get_owned(Goal, goal_id, owner_id())
    return render_goal(goal)


@bp.get("/goals/<int:goal_id>/jobs/<int:job_id>/subtree")
@login_required
def subtree(goal_id: int, job_id: int):
    """The rows under one job, for the page's script to put in place when the job is opened
    (without JavaScript the Open link reloads the page with the job open instead)."""
    goal = get_owned(Goal, goal_id, owner_id())
    job = get_owned(MicroJob, job_id, owner_id())
    if job.goal_id != goal.id:
        abort(404)
    opened = folding.parse_open(request.args.get("open")) | {job.id}
    folded = folding.folded_tree(goal, opened, under=job.id)
    return render_template("goals/_subtree.html", **_tree_context(goal, folded))


def render_goal(
    goal: Goal,
    status: int = 200,
    node_forms: dict[int | None, dict[str, FlaskForm]] | None = None,
):
    """The goal page, folded as its URL says (`?open=`); `node_forms` puts a failed form
    (with its errors and typed values) back on its node, which is shown: {job id or None
    for the top level: {"add"|"split"|"mode": form}}."""
    node_forms = node_forms or {}
    opened = folding.parse_open(request.args.get("open"))
    opened |= {job_id for job_id in node_forms if job_id is not None}
    folded = folding.folded_tree(goal, opened)
    context = _tree_context(goal, folded, node_forms)
    context["forms"][None] = {"add": node_forms.get(None, {}).get("add") or context["blank_add"]}
    return render_template(
        "goals/show.html",
        goal=goal,
        progress=tree.goal_progress(goal),
        staged=_staged_count(folded),
        **context,
    ), status


def _tree_context(
    goal: Goal,
    folded: folding.FoldedTree,
    node_forms: dict[int | None, dict[str, FlaskForm]] | None = None,
) -> dict[str, Any]:
    """What the tree's rows need: each node's forms, buttons and the URLs that open, fold
    and come back to it with the open state kept."""
    channels = channel_choices()
    node_forms = node_forms or {}
    # A blank form renders the same on every node but for the ids the template gives its
    # fields, so the nodes share one per kind (and per mode and channel) instead of building
    # and rendering three forms per job: see SharedForm.
    blank_add = SharedForm(TitleForm(formdata=None))
    blank_split = SharedForm(SplitForm(formdata=None))
    people = directory.choices(owner_id())
    mode_forms: dict[tuple[str, str, str], SharedForm] = {}

    def mode_form(job: MicroJob) -> SharedForm:
        key = (job.mode, job.channel or "", str(job.person_id or ""))
        if key not in mode_forms:
            data = {"mode": key[0], "channel": key[1], "person": key[2]}
            mode_forms[key] = SharedForm(
                ModeForm(formdata=None, channels=channels, people=people, data=data)
            )
        return mode_forms[key]

    forms: dict[int | None, dict[str, Any]] = {}
    for node in folded.nodes:
        job = node.job
        given = node_forms.get(job.id, {})
        forms[job.id] = {
            "add": given.get("add") or blank_add,
            "split": given.get("split") or blank_split,
            "mode": given.get("mode") or mode_form(job),
        }

    def tree_url(opened: Any, job_id: int | None = None) -> str:
        state = folding.format_open(opened) or None
        anchor = f"job-{job_id}" if job_id else None
        return url_for("goals.show", goal_id=goal.id, open=state, _anchor=anchor)

    return {
        "nodes": folded.nodes,
        "forms": forms,
        "person_names": {int(pid): name for pid, name in people},
        "blank_add": blank_add,
        "open_forms": {(k, name) for k, v in node_forms.items() for name in v},
        "buttons": _tree_buttons(folded.nodes),
        "waiting": waiting_for([n.job for n in folded.nodes if n.is_leaf], current_user),
        "here": lambda job_id=None: tree_url(folded.opened, job_id),
        "opened_url": lambda job_id: tree_url(folded.opened | {job_id}, job_id),
        "folded_url": lambda job_id: tree_url(folded.without(job_id), job_id),
    }


_ID_SLOT = "shared-form-id-slot"


class SharedForm:
    """A blank form shown on many tree nodes: each field renders once per set of attributes,
    then each node gets a copy with its own id put in. Rendering the same empty fields
    thousands of times through WTForms was most of the time of a 2,000-job goal page.

    Attributes other than fields (errors, data...) are the form's own.
    """

    def __init__(self, form: FlaskForm) -> None:
        self._form = form
        self._fields: dict[str, _SharedField] = {}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._form, name)
        if not isinstance(value, Field):
            return value
        if name not in self._fields:
            self._fields[name] = _SharedField(value)
        return self._fields[name]


class _SharedField:
    def __init__(self, field: Field) -> None:
        self._field = field
        self._html: dict[tuple, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._field, name)

    def __call__(self, **attrs: Any) -> Markup:
        field_id = attrs.pop("id", None)
        if field_id is None:
            return self._field(**attrs)
        key = tuple(sorted((name, repr(value)) for name, value in attrs.items()))
        if key not in self._html:
            self._html[key] = str(self._field(id=_ID_SLOT, **attrs))
        # As WTForms' html_params writes an attribute value.
        own_id = escape(field_id).replace(Markup('"'), Markup("&quot;"))
        return Markup(self._html[key].replace(_ID_SLOT, str(own_id)))


def _tree_buttons(nodes: list[folding.FoldedNode]) -> Callable[..., list[Button]]:
    """`job_buttons` for the tree's jobs, told which are leaves: asking each job for its
    children would load them, one query per job."""
    leaves = {node.job.id for node in nodes if node.is_leaf}

    def buttons(job: MicroJob, *, compact: bool = False) -> list[Button]:
        return job_buttons(job, compact=compact, leaf=job.id in leaves)

    return buttons


def _staged_count(folded: folding.FoldedTree) -> int:
    """How many leaves 'Dispatch everything marked' would send (shown or folded away)."""
    return sum(
        1
        for _, mode, _, status in folded.leaves
        if mode == "delegate" and status in dispatch_service.DISPATCHABLE
    )


@bp.route("/goals/<int:goal_id>/edit", methods=["GET", "POST"])
@login_required
def edit(goal_id: int):
    goal = get_owned(Goal, goal_id, owner_id())
    if request.method == "GET":
        form = GoalForm(obj=goal, data={"budget": amount_text(goal.budget_cents)})
    else:
        form = GoalForm()
    if form.validate_on_submit():
        try:
            tree.update_goal(goal, actor=actor(), **form.fields_for_service())
        except InvalidChange as exc:  # the budget or currency under money already held
            field = form.currency if exc.field == "currency" else form.budget
            field.errors.append(str(exc))
        else:
            flash("Goal saved.", "success")
            return redirect(goal_url(goal), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("goals/edit.html", goal=goal, form=form), status


@bp.post("/goals/<int:goal_id>/jobs")
@login_required
def add_top_job(goal_id: int):
    goal = get_owned(Goal, goal_id, owner_id())
    form = TitleForm()
    if not form.validate_on_submit():
        return render_goal(goal, 400, {None: {"add": form}})
    job = tree.add_job(goal, title=form.title.data, actor=actor())
    flash(f"Added “{job.title}”. Split it into smaller jobs, or keep or delegate it.", "success")
    # A top-level job is always shown: no need to open it.
    return redirect(url_for("goals.show", goal_id=goal.id, _anchor=f"job-{job.id}"), code=303)


@bp.post("/goals/<int:goal_id>/dispatch")
@login_required
def dispatch_all(goal_id: int):
    goal = get_owned(Goal, goal_id, owner_id())
    try:
        dispatches = dispatch_service.dispatch_goal(goal, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
    else:
        if dispatches:
            n = len(dispatches)
            flash(f"Sent {n} job{'s' if n != 1 else ''} out to their channels.", "success")
        else:
            flash("Nothing to dispatch: mark jobs “Delegate” and pick a channel first.", "info")
    return redirect(goal_url(goal), code=303)
