"""Playbooks: breakdown templates, shipped as YAML in dispatcher/playbooks/ or saved by owners.

Applying one turns its job templates (with the owner's parameters filled in) into a subtree in
one transaction. Shipped files are read when first needed and re-read when they change; an
invalid file raises a PlaybookError naming the file and the field. Owners' playbooks live in the
database (OwnerPlaybook) under keys like `my:weekly_post`, listed beside the shipped ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from flask import current_app, has_app_context
from marshmallow import ValidationError
from sqlalchemy import select

from dispatcher.errors import InvalidTransition, NotFound
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import Goal, MicroJob, OwnerPlaybook
from dispatcher.planning.build import MAX_NEW_JOBS, NewJob, create_subtree
from dispatcher.planning.playbook_schema import (
    NAME_PATTERN,
    PlaybookError,
    flatten_errors,
    validate_playbook,
    value_field,
)
from dispatcher.planning.templating import escape, render
from dispatcher.scoping import owned

PLAYBOOK_DIR = Path(__file__).resolve().parent.parent / "playbooks"
OWNER_PREFIX = "my:"


@dataclass(frozen=True)
class Playbook:
    key: str
    name: str
    title: str
    description: str
    source: str
    parameters: dict[str, dict[str, Any]]
    jobs: list[dict[str, Any]]
    raw: dict[str, Any]  # the definition as written: what cadences snapshot and saves store
    origin: str = "shipped"  # shipped | owner
    owner_playbook_id: int | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: default_value(p) for name, p in self.parameters.items()}

    def size(self, params: Mapping[str, Any] | None = None) -> int:
        """How many jobs applying it creates (with the defaults when no params are given)."""
        return _count(self.jobs, {**self.defaults, **(params or {})})


@dataclass
class ApplyResult:
    jobs: list[MicroJob]  # the new top-level jobs
    created: int
    warnings: list[str] = field(default_factory=list)


def from_definition(
    raw: Mapping[str, Any], source: str, *, key: str | None = None, origin: str = "shipped",
    owner_playbook_id: int | None = None,
) -> Playbook:  # fmt: skip
    """Validate a definition and wrap it; raises PlaybookError naming `source`."""
    data = validate_playbook(raw, source)
    return Playbook(
        key=key or data["name"],
        name=data["name"],
        title=data["title"],
        description=data["description"],
        source=data["source"],
        parameters=data["parameters"],
        jobs=data["jobs"],
        raw=dict(raw),
        origin=origin,
        owner_playbook_id=owner_playbook_id,
    )


def load_file(path: Path) -> Playbook:
    """Read and validate one playbook file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlaybookError(path.name, [f"{where}not valid YAML ({problem})"]) from exc
    playbook = from_definition(raw, path.name)
    if playbook.name != path.stem:
        raise PlaybookError(path.name, [f"name: must match the file name ({path.stem!r})"])
    return playbook


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int) -> Playbook:
    return load_file(Path(path))


def shipped_playbooks(directory: Path | None = None) -> list[Playbook]:
    """Every playbook file, sorted by title; re-read only when a file changes."""
    directory = directory or PLAYBOOK_DIR
    books = [_load_cached(str(p), p.stat().st_mtime_ns) for p in sorted(directory.glob("*.yaml"))]
    return sorted(books, key=lambda b: b.title.lower())


def owner_playbooks(owner_id: int) -> list[Playbook]:
    rows = db.session.scalars(owned(OwnerPlaybook, owner_id).order_by(OwnerPlaybook.title))
    return [_from_row(row) for row in rows]


def _from_row(row: OwnerPlaybook) -> Playbook:
    return from_definition(
        row.definition,
        f"{OWNER_PREFIX}{row.name}",
        key=f"{OWNER_PREFIX}{row.name}",
        origin="owner",
        owner_playbook_id=row.id,
    )


def list_playbooks(owner_id: int) -> list[Playbook]:
    """The shipped playbooks, then the owner's own."""
    return [*shipped_playbooks(), *owner_playbooks(owner_id)]


def get_playbook(key: str, owner_id: int) -> Playbook:
    """A shipped playbook by name, or one of the owner's by `my:<name>`; NotFound otherwise."""
    if key.startswith(OWNER_PREFIX):
        name = key[len(OWNER_PREFIX) :]
        row = db.session.scalars(
            owned(OwnerPlaybook, owner_id).where(OwnerPlaybook.name == name)
        ).first()
        if row is None:
            raise NotFound(f"playbook {key!r} not found")
        return _from_row(row)
    for playbook in shipped_playbooks():
        if playbook.key == key:
            return playbook
    raise NotFound(f"playbook {key!r} not found")


def default_value(definition: Mapping[str, Any]) -> Any:
    if definition.get("default") is not None:
        return value_field(definition["type"], definition).deserialize(definition["default"])
    return {
        "integer": definition.get("min") or 0,
        "boolean": False,
        "list": [],
    }.get(definition["type"], "")


def parse_params(playbook: Playbook, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Typed parameter values from form or JSON input, defaults for what is missing."""
    raw = raw or {}
    values: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, definition in playbook.parameters.items():
        value = raw.get(name)
        blank = value is None or (value == "" and definition["type"] in ("integer", "boolean"))
        if blank:
            values[name] = default_value(definition)
            continue
        try:
            values[name] = value_field(definition["type"], definition).deserialize(value)
        except ValidationError as exc:
            errors[name] = exc.messages
    for name in sorted(set(raw) - set(playbook.parameters)):
        errors[name] = ["Unknown parameter."]
    if errors:
        raise PlaybookError(playbook.key, flatten_errors(errors))
    return values


def _truthy(value: Any) -> bool:
    return bool(value)


def _iterations(template: Mapping[str, Any], scope: Mapping[str, Any]) -> list[dict[str, Any]]:
    if template.get("when") and not _truthy(scope[template["when"]]):
        return []
    if template.get("unless") and _truthy(scope[template["unless"]]):
        return []
    repeat = template.get("repeat")
    if repeat is None:
        return [dict(scope)]
    value = repeat if isinstance(repeat, int) else scope[repeat]
    if isinstance(value, list):
        return [{**scope, "n": i, "item": item} for i, item in enumerate(value, start=1)]
    return [{**scope, "n": i} for i in range(1, int(value) + 1)]


def _count(templates: list[Mapping[str, Any]], scope: Mapping[str, Any]) -> int:
    """Jobs an expansion would create, computed without building them."""
    total = 0
    for template in templates:
        for inner in _iterations(template, scope):
            total += 1 + _count(template.get("jobs", []), inner)
            if total > MAX_NEW_JOBS:
                return total
    return total


def expand(
    playbook: Playbook, params: Mapping[str, Any], channels: Iterable[str] | None = None
) -> tuple[list[NewJob], list[str]]:
    """The playbook's jobs for these (already parsed) parameters, and any warnings.

    A suggested channel is used when it is installed (`channels`); otherwise the job is left
    undecided, with the suggestion in its brief, so nothing is delegated to a missing adapter.
    """
    scope = {**playbook.defaults, **params}
    total = _count(playbook.jobs, scope)
    if total > MAX_NEW_JOBS:
        raise PlaybookError(
            playbook.key, [f"these parameters would create over {MAX_NEW_JOBS} jobs; use fewer"]
        )
    installed = set(_installed_channels() if channels is None else channels)
    missing: set[str] = set()

    def build(templates: list[Mapping[str, Any]], scope: Mapping[str, Any]) -> list[NewJob]:
        out: list[NewJob] = []
        for template in templates:
            for inner in _iterations(template, scope):
                fields: dict[str, Any] = {
                    "brief": render(template["brief"], inner),
                    "acceptance_criteria": [
                        render(c, inner) for c in template["acceptance_criteria"]
                    ],
                    "deliverable_kind": template["deliverable_kind"],
                    "estimate_minutes": template["estimate_minutes"],
                    "price_cents": template["price"],
                    "assignments": template["assignments"],
                    "mode": template["mode"],
                }
                suggested = template["channel"]
                chosen = next((c for c in suggested if c in installed), None)
                if chosen:
                    fields["channel"] = chosen
                elif suggested:
                    missing.update(suggested)
                    tip = f"Suggested channel: {' or '.join(suggested)}."
                    fields["brief"] = f"{fields['brief']}\n\n{tip}".strip()
                    if fields["mode"] == "delegate":
                        fields["mode"] = "undecided"
                title = render(template["title"], inner)[:300]
                children = build(template.get("jobs", []), inner)
                out.append(NewJob(title=title, fields=fields, children=children))
        return out

    specs = build(playbook.jobs, scope)
    warnings = []
    if missing:
        warnings.append(
            f"not installed here: {', '.join(sorted(missing))}; "
            "those jobs are left undecided with the suggestion in their brief"
        )
    return specs, warnings


def _installed_channels() -> list[str]:
    if not has_app_context():
        return []
    registry = current_app.extensions.get("dispatcher.adapters")
    return registry.names() if registry is not None else []


def check_can_take_children(job: MicroJob) -> None:
    """A leaf with work under way cannot become a parent: its status would vanish."""
    if not job.children and job.status not in (Status.DRAFT, Status.READY):
        raise InvalidTransition(
            job.id, job.status, "break down", ["only draft or ready jobs take children"]
        )


def apply_playbook(
    target: Goal | MicroJob,
    playbook: Playbook,
    params: Mapping[str, Any] | None = None,
    *,
    actor: str = "owner",
    channels: Iterable[str] | None = None,
) -> ApplyResult:
    """Break `target` (a job, or the goal's top level) down by the playbook, in one commit."""
    values = parse_params(playbook, params)
    if isinstance(target, MicroJob):
        check_can_take_children(target)
        goal, parent = target.goal, target
    else:
        goal, parent = target, None
    specs, warnings = expand(playbook, values, channels)
    created = create_subtree(goal, parent, specs, actor=actor)
    note(
        target, "playbook_applied", actor=actor, playbook=playbook.key,
        params=_jsonable(values), jobs=len(created),
    )  # fmt: skip
    db.session.commit()
    parent_id = parent.id if parent is not None else None
    tops = [j for j in created if j.parent_id == parent_id]
    return ApplyResult(jobs=tops, created=len(created), warnings=warnings)


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _amount(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def _template_of(job: MicroJob, children: list[dict[str, Any]]) -> dict[str, Any]:
    """A job as a playbook entry: only what differs from the defaults, braces escaped."""
    entry: dict[str, Any] = {"title": escape(job.title)}
    if job.brief:
        entry["brief"] = escape(job.brief)
    if job.estimate_minutes is not None:
        entry["estimate_minutes"] = job.estimate_minutes
    if job.acceptance_criteria:
        entry["acceptance_criteria"] = [escape(c) for c in job.acceptance_criteria if c]
    if job.deliverable_kind != "text":
        entry["deliverable_kind"] = job.deliverable_kind
    if job.mode != "undecided":
        entry["mode"] = job.mode
    if job.channel:
        entry["channel"] = job.channel
    if job.price_cents:
        entry["price"] = _amount(job.price_cents)
    if job.assignments != 1:
        entry["assignments"] = job.assignments
    if children:
        entry["jobs"] = children
    return entry


def subtree_definition(
    job: MicroJob, name: str, *, title: str | None = None, description: str = "",
    include_root: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A playbook definition from a subtree (one query for the whole goal's jobs)."""
    rows = db.session.scalars(
        select(MicroJob)
        .where(MicroJob.goal_id == job.goal_id)
        .order_by(MicroJob.position, MicroJob.id)
    ).all()
    by_parent: dict[int | None, list[MicroJob]] = {}
    for row in rows:
        by_parent.setdefault(row.parent_id, []).append(row)

    def entries(parent_id: int) -> list[dict[str, Any]]:
        return [_template_of(c, entries(c.id)) for c in by_parent.get(parent_id, [])]

    children = entries(job.id)
    jobs = [_template_of(job, children)] if include_root or not children else children
    return {
        "name": name,
        "title": (title or job.title)[:200],
        "description": description,
        "source": f"saved from {job.title!r}"[:500],
        "jobs": jobs,
    }


def save_subtree_as_playbook(
    job: MicroJob, name: str, *, title: str | None = None, description: str = "",
    include_root: bool = False, actor: str = "owner",
) -> OwnerPlaybook:  # fmt: skip
    """Keep a subtree as the owner's own playbook (its children, or the job with them)."""
    name = (name or "").strip().lower()
    if not re.match(NAME_PATTERN, name):
        raise ValueError("name: use 1-60 lowercase letters, digits, - or _, starting with one")
    exists = db.session.scalars(
        owned(OwnerPlaybook, job.owner_id).where(OwnerPlaybook.name == name)
    ).first()
    if exists is not None:
        raise ValueError(f"name: you already have a playbook called {name!r}")
    definition = subtree_definition(
        job, name, title=title, description=description, include_root=include_root
    )
    validate_playbook(definition, f"{OWNER_PREFIX}{name}")
    row = OwnerPlaybook(
        owner_id=job.owner_id,
        name=name,
        title=definition["title"],
        description=description,
        definition=definition,
    )
    db.session.add(row)
    note(job, "playbook_saved", actor=actor, playbook=f"{OWNER_PREFIX}{name}")
    db.session.commit()
    return row


def delete_owner_playbook(row: OwnerPlaybook) -> None:
    db.session.delete(row)
    db.session.commit()


def as_yaml(playbook: Playbook) -> str:
    """The definition as a YAML file an owner could drop into dispatcher/playbooks/."""
    return yaml.safe_dump(playbook.raw, sort_keys=False, allow_unicode=True, width=100)
