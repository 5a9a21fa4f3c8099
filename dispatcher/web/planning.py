"""Planning pages: the tree editor, paste-to-split, playbooks, cadences, export and import.

Views parse input (dispatcher/planning/forms.py), load owned rows through `get_owned`, and call
the planning services; expected refusals come back as a message on the page (HTML) or as
`{"error": ...}` with a 4xx status (JSON from the tree's script), never as a 500.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from dispatcher.errors import BudgetExceeded, InvalidTransition, NotFound
from dispatcher.extensions import db
from dispatcher.models import Cadence, Goal, MicroJob, OwnerPlaybook
from dispatcher.models._base import utcnow
from dispatcher.planning import cadence as cadences
from dispatcher.planning import moves, outline, playbooks, transfer, tree
from dispatcher.planning.forms import (
    CadenceFormSchema,
    FormError,
    MoveSchema,
    SavePlaybookSchema,
    TitleSchema,
    load,
    param_values,
)
from dispatcher.planning.playbook_schema import PlaybookError
from dispatcher.scoping import get_owned
from dispatcher.web.common import actor as _actor
from dispatcher.web.common import counted, safe_next

bp = Blueprint("planning", __name__)

REFUSALS = (ValueError, InvalidTransition, BudgetExceeded)


def _owner_id() -> int:
    return int(current_user.id)


def _goal(goal_id: int) -> Goal:
    return get_owned(Goal, goal_id, _owner_id())


def _job(goal: Goal, job_id: Any) -> MicroJob:
    job = get_owned(MicroJob, job_id, _owner_id())
    if job.goal_id != goal.id:
        raise NotFound(f"MicroJob {job_id} not found in this goal")
    return job


def _messages(exc: Exception) -> list[str]:
    return list(getattr(exc, "errors", None) or [str(exc)])


def _status_of(exc: Exception) -> int:
    return 409 if isinstance(exc, InvalidTransition | BudgetExceeded) else 400


def _plan_url(goal: Goal, job: MicroJob | None = None) -> str:
    anchor = f"job-{job.id}" if job is not None else None
    return url_for("planning.plan", goal_id=goal.id, _anchor=anchor)


# --- the tree editor --------------------------------------------------------------------------


@bp.get("/goals/<int:goal_id>/plan")
@login_required
def plan(goal_id: int):
    goal = _goal(goal_id)
    return _render_plan(goal)


def _render_plan(goal: Goal, status: int = 200, errors: list[str] | None = None, text: str = ""):
    nodes = tree.goal_tree(goal)
    return (
        render_template(
            "planning/plan.html",
            goal=goal,
            nodes=nodes,
            progress=tree.goal_progress(goal),
            jobs_url=url_for("planning.breakdown", goal_id=goal.id, job_id=0).removesuffix(
                "/0/breakdown"
            ),
            errors=errors or [],
            text=text,
        ),
        status,
    )


@bp.post("/goals/<int:goal_id>/outline")
@login_required
def paste_outline(goal_id: int):
    """Paste a list at the goal's top level (or under `parent_id`)."""
    goal = _goal(goal_id)
    text = request.form.get("text", "")
    parent = _job(goal, request.form["parent_id"]) if request.form.get("parent_id") else None
    try:
        added = outline.add_outline(goal, text, parent=parent, actor=_actor())
    except REFUSALS as exc:
        db.session.rollback()
        return _render_plan(goal, _status_of(exc), _messages(exc), text)
    flash(f"Added {counted(added.count, 'job')} from your list.", "success")
    return redirect(_plan_url(goal, added.tops[0] if added.tops else None))


@bp.route("/goals/<int:goal_id>/jobs/<int:job_id>/breakdown", methods=["GET", "POST"])
@login_required
def breakdown(goal_id: int, job_id: int):
    """One job's planning page: split it by pasting, rename, move, apply or save a playbook.

    Everything the tree's script does can be done here without JavaScript.
    """
    goal = _goal(goal_id)
    job = _job(goal, job_id)
    if request.method == "GET":
        return _render_breakdown(goal, job)
    text = request.form.get("text", "")
    try:
        added = outline.split_outline(job, text, actor=_actor())
    except REFUSALS as exc:
        db.session.rollback()
        return _render_breakdown(goal, job, _status_of(exc), _messages(exc), text)
    flash(f"Split {job.title!r} into {counted(added.count, 'job')}.", "success")
    return redirect(_plan_url(goal, job))


def _render_breakdown(
    goal: Goal, job: MicroJob, status: int = 200, errors: list[str] | None = None, text: str = ""
):
    return (
        render_template(
            "planning/breakdown.html",
            goal=goal,
            job=job,
            errors=errors or [],
            text=text,
            playbooks=playbooks.list_playbooks(_owner_id()),
        ),
        status,
    )


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def _input() -> dict[str, Any]:
    if request.is_json:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}
    return request.form.to_dict()


@bp.post("/goals/<int:goal_id>/jobs/<int:job_id>/move")
@login_required
def move(goal_id: int, job_id: int):
    """Move a job: JSON {direction} or {parent_id, position} from the script, or a form."""
    goal = _goal(goal_id)
    job = _job(goal, job_id)
    try:
        data = load(MoveSchema(), _input(), blanks=("direction", "parent_id", "position"))
        if data["direction"]:
            moves.nudge(job, data["direction"], actor=_actor())
        else:
            parent = _job(goal, data["parent_id"]) if data["parent_id"] is not None else None
            moves.move_job(job, parent, data["position"], actor=_actor())
    except REFUSALS as exc:
        db.session.rollback()
        if _wants_json():
            return jsonify(error="; ".join(_messages(exc))), _status_of(exc)
        flash("; ".join(_messages(exc)), "error")
        return redirect(safe_next(request.form.get("next")) or _plan_url(goal, job))
    if _wants_json():
        return jsonify(id=job.id, parent_id=job.parent_id, position=job.position)
    return redirect(safe_next(request.form.get("next")) or _plan_url(goal, job))


@bp.post("/goals/<int:goal_id>/move")
@login_required
def move_button(goal_id: int):
    """The tree's move buttons without JavaScript: one form, `move=<job id>:<direction>`."""
    goal = _goal(goal_id)
    job_id, _, direction = request.form.get("move", "").partition(":")
    job = _job(goal, job_id)
    try:
        moves.nudge(job, direction, actor=_actor())
    except REFUSALS as exc:
        db.session.rollback()
        flash("; ".join(_messages(exc)), "error")
    return redirect(_plan_url(goal, job))


@bp.post("/goals/<int:goal_id>/jobs/<int:job_id>/title")
@login_required
def rename(goal_id: int, job_id: int):
    """In-place title edit (JSON from the script) or the breakdown page's rename form."""
    goal = _goal(goal_id)
    job = _job(goal, job_id)
    try:
        data = load(TitleSchema(), _input())
        moves.rename_job(job, data["title"], actor=_actor())
    except REFUSALS as exc:
        db.session.rollback()
        if _wants_json():
            return jsonify(error="; ".join(_messages(exc))), 400
        return _render_breakdown(goal, job, 400, _messages(exc))
    if _wants_json():
        return jsonify(id=job.id, title=job.title)
    flash("Renamed.")
    return redirect(_plan_url(goal, job))


# --- playbooks --------------------------------------------------------------------------------


@bp.get("/playbooks")
@login_required
def playbook_list():
    return render_template(
        "planning/playbooks.html",
        playbooks=playbooks.list_playbooks(_owner_id()),
        goal=None,
        job=None,
    )


@bp.get("/playbooks/<key>")
@login_required
def playbook_show(key: str):
    playbook = playbooks.get_playbook(key, _owner_id())
    return render_template("planning/playbook.html", playbook=playbook)


@bp.get("/playbooks/<key>/yaml")
@login_required
def playbook_yaml(key: str):
    playbook = playbooks.get_playbook(key, _owner_id())
    filename = f"{playbook.name}.yaml"
    return Response(
        playbooks.as_yaml(playbook),
        mimetype="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/playbooks/<key>/delete")
@login_required
def playbook_delete(key: str):
    playbook = playbooks.get_playbook(key, _owner_id())
    if playbook.owner_playbook_id is None:
        flash("Shipped playbooks cannot be deleted.", "error")
        return redirect(url_for("planning.playbook_show", key=key))
    row = get_owned(OwnerPlaybook, playbook.owner_playbook_id, _owner_id())
    playbooks.delete_owner_playbook(row)
    flash(f"Deleted your playbook {playbook.title!r}.")
    return redirect(url_for("planning.playbook_list"))


@bp.get("/goals/<int:goal_id>/playbooks")
@login_required
def playbook_pick(goal_id: int):
    """Pick a playbook to apply to the goal, or to `?job=<id>`."""
    goal = _goal(goal_id)
    job = _job(goal, request.args["job"]) if request.args.get("job") else None
    return render_template(
        "planning/playbooks.html",
        playbooks=playbooks.list_playbooks(_owner_id()),
        goal=goal,
        job=job,
        repeat=bool(request.args.get("repeat")),
    )


@bp.route("/goals/<int:goal_id>/playbooks/<key>/apply", methods=["GET", "POST"])
@login_required
def playbook_apply(goal_id: int, key: str):
    """Fill the parameters; apply once, or repeat on a cadence ("1 guest post a week")."""
    goal = _goal(goal_id)
    job_id = request.values.get("job")
    job = _job(goal, job_id) if job_id else None
    playbook = playbooks.get_playbook(key, _owner_id())
    if request.method == "GET":
        return _render_apply(goal, job, playbook, playbook.defaults, {})
    raw = param_values(request.form, request.form.getlist)
    cadence_input = {k: request.form.get(k, "") for k in CADENCE_KEYS}
    try:
        if request.form.get("action") == "repeat":
            return _create_cadence(goal, job, playbook, raw, cadence_input)
        result = playbooks.apply_playbook(job or goal, playbook, raw, actor=_actor())
    except (*REFUSALS, FormError) as exc:
        db.session.rollback()
        return _render_apply(
            goal, job, playbook, raw, cadence_input, _status_of(exc), _messages(exc)
        )
    flash(f"Applied {playbook.title!r}: {result.created} job(s) added.")
    for warning in result.warnings:
        flash(warning, "warning")
    return redirect(_plan_url(goal, job or (result.jobs[0] if result.jobs else None)))


CADENCE_KEYS = ("title", "every", "unit", "starts_on", "count", "until")


def _create_cadence(goal, job, playbook, raw, cadence_input):
    data = load(CadenceFormSchema(), cadence_input, blanks=("count", "until", "every", "unit"))
    data = {k: v for k, v in data.items() if v is not None}
    cadence = cadences.create_cadence(goal, playbook, raw, parent=job, actor=_actor(), **data)
    built = cadences.run_due_cadences(utcnow(), cadence_ids=[cadence.id])
    flash(f"{cadence.title!r} repeats {cadences.describe(cadence)}; {built} built so far.")
    return redirect(url_for("planning.cadence_page", goal_id=goal.id))


def _render_apply(goal, job, playbook, values, cadence_input, status=200, errors=None):
    defaults = {
        "title": playbook.title,
        "every": "1",
        "unit": "week",
        "starts_on": date.today().isoformat(),
        "count": "",
        "until": "",
    }
    return (
        render_template(
            "planning/apply.html",
            goal=goal,
            job=job,
            playbook=playbook,
            values={**playbook.defaults, **(values or {})},
            cadence={**defaults, **{k: v for k, v in cadence_input.items() if v}},
            errors=errors or [],
            size=_safe_size(playbook, values),
            repeat=bool(request.args.get("repeat") or request.form.get("action") == "repeat"),
        ),
        status,
    )


def _safe_size(playbook: playbooks.Playbook, values: dict[str, Any]) -> int | None:
    try:
        return playbook.size(playbooks.parse_params(playbook, values))
    except PlaybookError:
        return None


@bp.route("/goals/<int:goal_id>/jobs/<int:job_id>/save-playbook", methods=["POST"])
@login_required
def playbook_save(goal_id: int, job_id: int):
    goal = _goal(goal_id)
    job = _job(goal, job_id)
    try:
        data = load(SavePlaybookSchema(), request.form.to_dict(), blanks=("title",))
        row = playbooks.save_subtree_as_playbook(job, actor=_actor(), **data)
    except (*REFUSALS, FormError) as exc:
        db.session.rollback()
        return _render_breakdown(goal, job, 400, _messages(exc))
    flash(f"Saved as your playbook {row.title!r}.")
    return redirect(url_for("planning.playbook_show", key=f"{playbooks.OWNER_PREFIX}{row.name}"))


# --- cadences ---------------------------------------------------------------------------------


@bp.get("/goals/<int:goal_id>/cadence")
@login_required
def cadence_page(goal_id: int):
    goal = _goal(goal_id)
    return render_template(
        "planning/cadence.html",
        goal=goal,
        reports=cadences.cadence_report(goal),
        describe=cadences.describe,
    )


@bp.post("/goals/<int:goal_id>/cadence/<int:cadence_id>/<action>")
@login_required
def cadence_action(goal_id: int, cadence_id: int, action: str):
    goal = _goal(goal_id)
    cadence = get_owned(Cadence, cadence_id, _owner_id())
    if cadence.goal_id != goal.id:
        raise NotFound(f"Cadence {cadence_id} not found in this goal")
    if action == "stop":
        cadences.stop_cadence(cadence, actor=_actor())
        flash(f"{cadence.title!r} will not repeat any more.")
    elif action == "delete":
        cadences.delete_cadence(cadence, actor=_actor())
        flash("Deleted; the jobs it built stay in the plan.")
    elif action == "run":
        built = cadences.run_due_cadences(utcnow(), cadence_ids=[cadence.id])
        flash(f"{built} new period(s) built.")
    else:
        raise NotFound(f"no cadence action {action!r}")
    return redirect(url_for("planning.cadence_page", goal_id=goal.id))


# --- export and import ------------------------------------------------------------------------


def _download_name(goal: Goal, ext: str) -> str:
    return f"goal-{goal.id}.{ext}"


@bp.get("/goals/<int:goal_id>/export.csv")
@login_required
def export_csv(goal_id: int):
    goal = _goal(goal_id)
    return Response(
        transfer.export_csv(goal),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{_download_name(goal, "csv")}"'},
    )


@bp.get("/goals/<int:goal_id>/export.json")
@login_required
def export_json(goal_id: int):
    goal = _goal(goal_id)
    body = json.dumps(transfer.export_goal(goal), indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{_download_name(goal, "json")}"'},
    )


@bp.route("/goals/import", methods=["GET", "POST"])
@login_required
def import_page():
    if request.method == "GET":
        return render_template("planning/import.html", errors=[])
    upload = request.files.get("file")
    raw = upload.read() if upload is not None and upload.filename else b""
    if not raw:
        return render_template("planning/import.html", errors=["file: choose a JSON export"]), 400
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        message = f"file: not a JSON file ({exc})"
        return render_template("planning/import.html", errors=[message]), 400
    try:
        result = transfer.import_goal(_owner_id(), data, actor=_actor())
    except transfer.GoalImportError as exc:
        db.session.rollback()
        return render_template("planning/import.html", errors=exc.errors), 400
    flash(f"Imported {result.goal.title!r} as a new goal with {result.jobs} job(s).")
    for warning in result.warnings:
        flash(warning, "warning")
    return redirect(url_for("planning.plan", goal_id=result.goal.id))


@bp.app_context_processor
def _planning_links() -> dict[str, Any]:
    """`planning_links(goal)` for other pages' templates: where the planning pages live."""

    def planning_links(goal: Goal) -> dict[str, str]:
        return {
            "plan": url_for("planning.plan", goal_id=goal.id),
            "playbooks": url_for("planning.playbook_pick", goal_id=goal.id),
            "cadence": url_for("planning.cadence_page", goal_id=goal.id),
            "csv": url_for("planning.export_csv", goal_id=goal.id),
            "json": url_for("planning.export_json", goal_id=goal.id),
            "import": url_for("planning.import_page"),
        }

    return {"planning_links": planning_links}
