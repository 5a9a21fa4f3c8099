"""Export a goal (CSV of its jobs; JSON of the whole goal tree) and import the JSON as a new goal.

The JSON keeps everything the goal's plan is made of: the goal, its metric readings, every job
with all its fields and status, and its cadences with the periods already built. What it does
not carry is the platforms' side (dispatches, deliveries, reviews, the event log): an imported
copy has no open orders, so jobs that were out with a platform come back `ready` with nothing
reserved, accepted or paid ones come back `done`, and the import says how many. Statuses are
reached through the job's state machine, as any other change is. Everything else survives
export -> import -> export.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from dispatcher import lifecycle
from dispatcher.errors import DispatcherError
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import Cadence, CadenceRun, Goal, MetricValue, MicroJob
from dispatcher.models._base import utcnow
from dispatcher.planning import tree
from dispatcher.planning.build import MAX_DEPTH, MAX_NEW_JOBS, NewJob, create_subtree
from dispatcher.planning.playbook_schema import PlaybookError, flatten_errors, validate_playbook
from dispatcher.planning.transfer_schema import FORMAT, VERSION, GoalExportSchema

CSV_COLUMNS = [
    "path", "title", "status", "mode", "channel", "estimate_minutes", "price", "currency",
    "due", "planned_for", "criteria",
]  # fmt: skip
GOAL_KEYS = [
    "title", "why", "metric_name", "baseline", "target", "deadline", "currency",
    "budget_cents", "reserved_cents", "spent_cents", "personal",
]  # fmt: skip
JOB_KEYS = [
    "title", "brief", "acceptance_criteria", "deliverable_kind", "estimate_minutes", "due_date",
    "planned_for", "price_cents", "free", "mode", "channel", "channel_options", "assignments",
    "budget_cents", "reserved_cents", "spent_cents", "status", "finished_at",
]  # fmt: skip
#: How each exported status comes back, reached from draft through the job's state machine.
#: A copy has no orders, so whatever needs one cannot be restored: jobs that were out with a
#: platform (or failed, expired, rejected there) come back ready; accepted and paid work
#: comes back done.
IMPORT_ACTIONS: dict[str, str | None] = {
    Status.DRAFT: None,
    Status.READY: "make_ready",
    Status.IN_PROGRESS: "start",
    Status.DONE: "complete",
    Status.ACCEPTED: "complete",
    Status.PAID: "complete",
    Status.CANCELLED: "cancel",
}
IN_FLIGHT = frozenset(Status) - IMPORT_ACTIONS.keys()
#: Statuses kept as they were (the rest are reset or closed as done).
KEPT = frozenset({Status.DRAFT, Status.READY, Status.IN_PROGRESS, Status.DONE, Status.CANCELLED})


class GoalImportError(DispatcherError, ValueError):
    """The uploaded file is not a goal export we can read; `errors` names each bad field."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _jobs_by_parent(goal: Goal) -> dict[int | None, list[MicroJob]]:
    rows = db.session.scalars(
        select(MicroJob).where(MicroJob.goal_id == goal.id).order_by(MicroJob.position, MicroJob.id)
    ).all()
    by_parent: dict[int | None, list[MicroJob]] = defaultdict(list)
    for row in rows:
        by_parent[row.parent_id].append(row)
    return by_parent


def export_goal(goal: Goal) -> dict[str, Any]:
    """The whole goal as plain JSON-able data (see the module docstring for what is kept)."""
    by_parent = _jobs_by_parent(goal)
    paths: dict[int, str] = {}

    def entries(parent_id: int | None, prefix: str) -> list[dict[str, Any]]:
        out = []
        for index, job in enumerate(by_parent.get(parent_id, []), start=1):
            path = f"{prefix}{index}"
            paths[job.id] = path
            entry = {"path": path, **{k: _plain(getattr(job, k)) for k in JOB_KEYS}}
            entry["children"] = entries(job.id, f"{path}.")
            out.append(entry)
        return out

    jobs = entries(None, "")
    cadences = db.session.scalars(
        select(Cadence).where(Cadence.goal_id == goal.id).order_by(Cadence.id)
    ).all()
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().isoformat(),
        "goal": {k: _plain(getattr(goal, k)) for k in GOAL_KEYS},
        "metric_values": [
            {"on": m.on.isoformat(), "value": m.value, "note": m.note}
            for m in sorted(goal.metric_values, key=lambda m: (m.on, m.id))
        ],
        "jobs": jobs,
        "cadences": [_export_cadence(c, paths) for c in cadences],
    }


def _export_cadence(cadence: Cadence, paths: dict[int, str]) -> dict[str, Any]:
    keys = ["title", "playbook", "params", "definition", "every", "unit", "starts_on", "count",
            "until", "last_period", "active"]  # fmt: skip
    data = {k: _plain(getattr(cadence, k)) for k in keys}
    data["parent_path"] = paths.get(cadence.parent_id) if cadence.parent_id else None
    data["runs"] = [
        {"period": r.period, "job_path": paths.get(r.job_id) if r.job_id else None}
        for r in cadence.runs
    ]
    return data


def _csv_safe(text: str) -> str:
    """Keep spreadsheets from running a title as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_rows(goal: Goal) -> list[dict[str, str]]:
    """One row per job, depth-first, with derived statuses for parents."""
    rows: list[dict[str, str]] = []

    def visit(nodes: list[tree.TreeNode], prefix: str) -> None:
        for index, node in enumerate(nodes, start=1):
            job, path = node.job, f"{prefix}{index}"
            rows.append(
                {
                    "path": path,
                    "title": _csv_safe(job.title),
                    "status": node.status.value,
                    "mode": job.mode,
                    "channel": job.channel or "",
                    "estimate_minutes": ""
                    if job.estimate_minutes is None
                    else str(job.estimate_minutes),
                    "price": f"{job.price_cents // 100}.{job.price_cents % 100:02d}",
                    "currency": goal.currency,
                    "due": job.due_date.isoformat() if job.due_date else "",
                    "planned_for": job.planned_for.isoformat() if job.planned_for else "",
                    "criteria": _csv_safe(" | ".join(job.acceptance_criteria or [])),
                }
            )
            visit(node.children, f"{path}.")

    visit(tree.goal_tree(goal), "")
    return rows


def export_csv(goal: Goal) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(export_rows(goal))
    return buffer.getvalue()


@dataclass
class ImportResult:
    goal: Goal
    jobs: int
    reset: int = 0  # in-flight jobs brought back as ready
    warnings: list[str] = field(default_factory=list)


def _depth_and_size(jobs: Any) -> tuple[int, int]:
    deepest, total = 0, 0
    stack = [(j, 1) for j in jobs] if isinstance(jobs, list) else []
    while stack:
        node, depth = stack.pop()
        total += 1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH or total > MAX_NEW_JOBS:
            break
        if isinstance(node, dict) and isinstance(node.get("children"), list):
            stack.extend((c, depth + 1) for c in node["children"])
    return deepest, total


def load_export(data: Any) -> dict[str, Any]:
    """Validate an export file's data; raises GoalImportError listing each bad field."""
    if not isinstance(data, dict):
        raise GoalImportError(["the file must hold a JSON object (a goal export)"])
    depth, total = _depth_and_size(data.get("jobs"))
    if depth > MAX_DEPTH:
        raise GoalImportError([f"jobs: nested more than {MAX_DEPTH} levels deep"])
    if total > MAX_NEW_JOBS:
        raise GoalImportError([f"jobs: more than {MAX_NEW_JOBS} jobs; split the file"])
    try:
        loaded = GoalExportSchema().load(data)
    except ValidationError as exc:
        raise GoalImportError(flatten_errors(exc.messages)) from exc
    problems: list[str] = []
    paths = _loaded_paths(loaded["jobs"])
    for index, cadence in enumerate(loaded["cadences"]):
        try:
            validate_playbook(cadence["definition"], "")
        except PlaybookError as exc:
            problems += [f"cadences[{index}].definition.{e}" for e in exc.errors]
        if cadence["parent_path"] and cadence["parent_path"] not in paths:
            problems.append(f"cadences[{index}].parent_path: no job at {cadence['parent_path']!r}")
        for r, run in enumerate(cadence["runs"]):
            if run["job_path"] and run["job_path"] not in paths:
                problems.append(
                    f"cadences[{index}].runs[{r}].job_path: no job at {run['job_path']!r}"
                )
    if problems:
        raise GoalImportError(problems)
    return loaded


def _loaded_paths(jobs: list[dict[str, Any]], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for index, job in enumerate(jobs, start=1):
        path = f"{prefix}{index}"
        out.add(path)
        out |= _loaded_paths(job["children"], f"{path}.")
    return out


def import_goal(owner_id: int, data: Any, *, actor: str = "owner") -> ImportResult:
    """Create a NEW goal for `owner_id` from an export, in one transaction."""
    loaded = load_export(data)
    restore = _Restore()
    specs = [restore.spec(entry) for entry in loaded["jobs"]]  # InvalidTransition: no write
    goal_fields = dict(loaded["goal"])
    goal_fields.pop("reserved_cents")
    goal_fields["spent_cents"] = restore.goal_spent
    goal = Goal(owner_id=owner_id, **goal_fields)
    db.session.add(goal)
    db.session.flush()
    note(goal, "goal_imported", actor=actor, title=goal.title)
    for reading in loaded["metric_values"]:
        db.session.add(MetricValue(goal_id=goal.id, **reading))
    created = create_subtree(goal, None, specs, actor=actor)
    _import_cadences(goal, loaded["cadences"], _paths(created))
    db.session.commit()
    warnings = []
    if restore.reset:
        warnings.append(
            f"{restore.reset} job(s) were out with a platform; in the copy they are ready"
        )
    if restore.closed:
        warnings.append(
            f"{restore.closed} accepted or paid job(s) are done in the copy (it has no orders)"
        )
    return ImportResult(goal=goal, jobs=len(created), reset=restore.reset, warnings=warnings)


@dataclass
class _Restore:
    """Turns exported entries into NewJobs carrying the state they come back in: the status
    reached from draft through the job's state machine (IMPORT_ACTIONS), finish times and
    spend as exported (spend rolled up every envelope above a leaf), nothing reserved (no
    orders exist). Counts the jobs reset to ready and the accepted or paid ones closed as done.
    All of it is known before the first INSERT, so each job is one INSERT and no UPDATE."""

    reset: int = 0
    closed: int = 0
    goal_spent: int = 0

    def spec(self, entry: dict[str, Any]) -> NewJob:
        fields = {
            k: entry[k]
            for k in JOB_KEYS
            if k in tree.JOB_FIELDS and k != "title" and entry.get(k) is not None
        }
        children = [self.spec(child) for child in entry["children"]]
        status = entry["status"]
        if status in IN_FLIGHT:
            self.reset += 1
            action = IMPORT_ACTIONS[Status.READY]
        else:
            self.closed += status not in KEPT
            action = IMPORT_ACTIONS[Status(status)]
        move = lifecycle.plan(action, data={"imported": status}) if action is not None else None
        after = move.after if move is not None else Status.DRAFT
        if children:  # spend rolls up from the leaves
            spent = sum(child.restored.get("spent_cents", 0) for child in children)
        else:
            spent = entry["spent_cents"]
            self.goal_spent += spent
        restored: dict[str, Any] = {"spent_cents": spent}
        if after in lifecycle.COMPLETE:
            restored["finished_at"] = entry["finished_at"]
        return NewJob(
            title=entry["title"], fields=fields, children=children, move=move, restored=restored
        )


def _paths(created: list[MicroJob]) -> dict[str, MicroJob]:
    counters: dict[int | None, int] = defaultdict(int)
    path_of: dict[int, str] = {}
    out: dict[str, MicroJob] = {}
    for job in created:  # parents come before children, siblings in order
        counters[job.parent_id] += 1
        prefix = f"{path_of[job.parent_id]}." if job.parent_id else ""
        path_of[job.id] = f"{prefix}{counters[job.parent_id]}"
        out[path_of[job.id]] = job
    return out


def _import_cadences(
    goal: Goal, cadences: list[dict[str, Any]], paths: dict[str, MicroJob]
) -> None:
    """Cadences with the periods already built, pointing at the copied jobs."""
    for data in cadences:
        data = dict(data)
        runs = data.pop("runs")
        parent_path = data.pop("parent_path")
        parent = paths[parent_path] if parent_path else None
        cadence = Cadence(
            owner_id=goal.owner_id,
            goal_id=goal.id,
            parent_id=parent.id if parent is not None else None,
            **data,
        )
        db.session.add(cadence)
        for run in runs:
            job = paths[run["job_path"]] if run["job_path"] else None
            cadence.runs.append(
                CadenceRun(period=run["period"], job_id=job.id if job is not None else None)
            )
