"""Split a job in one step by pasting a list: one line a child, indentation makes grandchildren.

Owners plan in dated outlines, Word lists and Markdown checklists (article 002); whatever they
paste should become the tree they meant. Bullets (`-`, `*`, `+`, `•`), numbers (`1.`, `1)`) and
checkboxes (`[ ]`, `[x]`) are stripped; a checked item becomes a done job; blank lines are
ignored. Indentation is compared, not counted: a line indented deeper than the one above is
its child, and a line that dedents to a depth between two levels joins the deeper one's
parent (the sensible reading of a sloppy paste).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import Goal, MicroJob
from dispatcher.planning.build import NewJob, create_subtree

TITLE_MAX = 300
MAX_ITEMS = 2000
TAB_WIDTH = 4

_BULLET = re.compile(r"^(?:[-*+•‣◦▪]|\d{1,4}[.)])(?:\s+|$)")
_CHECKBOX = re.compile(r"^\[([ xX✓✔])\](?:\s+|$)")


@dataclass
class OutlineItem:
    title: str
    line: int  # 1-based line number in the pasted text, for error messages
    done: bool = False
    children: list[OutlineItem] = field(default_factory=list)


def _indent_of(raw: str) -> int:
    stripped = raw.lstrip(" \t\u00a0")
    return len(raw[: len(raw) - len(stripped)].replace("\u00a0", " ").expandtabs(TAB_WIDTH))


def _clean(text: str) -> tuple[str, bool]:
    """The title without its list markers, and whether it was checked."""
    text = text.strip()
    match = _BULLET.match(text)
    if match:
        text = text[match.end() :]
    done = False
    match = _CHECKBOX.match(text)
    if match:
        done = match.group(1) != " "
        text = text[match.end() :]
    return " ".join(text.split()), done


def parse_outline(text: str, *, max_items: int = MAX_ITEMS) -> list[OutlineItem]:
    """Parse pasted text into a nested outline; raises ValueError naming the offending line."""
    lines: list[tuple[int, int, str, bool]] = []  # (line number, indent, title, done)
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        title, done = _clean(raw)
        if not title:
            continue  # a bare bullet or an empty checkbox: nothing to do
        if len(title) > TITLE_MAX:
            raise ValueError(
                f"line {number}: the title is {len(title)} characters long; "
                f"the limit is {TITLE_MAX}"
            )
        lines.append((number, _indent_of(raw), title, done))
        if len(lines) > max_items:
            raise ValueError(f"line {number}: more than {max_items} items; paste fewer at once")
    if not lines:
        raise ValueError("nothing to add: paste one item per line")

    base = min(indent for _, indent, _, _ in lines)
    roots: list[OutlineItem] = []
    stack: list[tuple[int, OutlineItem]] = []  # the open ancestors, with their indents
    for number, indent, title, done in lines:
        indent -= base
        item = OutlineItem(title=title, line=number, done=done)
        while stack and stack[-1][0] > indent:
            stack.pop()
        if stack and stack[-1][0] == indent:
            stack.pop()  # a sibling of the previous item at this depth
        if stack:
            stack[-1][1].children.append(item)
        elif indent > 0:
            raise ValueError(
                f"line {number}: {title!r} is indented, but there is no item above it "
                "to belong to; remove the indentation or add its parent first"
            )
        else:
            roots.append(item)
        stack.append((indent, item))
    return roots


def to_new_jobs(items: list[OutlineItem]) -> list[NewJob]:
    return [NewJob(title=i.title, done=i.done, children=to_new_jobs(i.children)) for i in items]


def count_items(items: list[OutlineItem]) -> int:
    return sum(1 + count_items(i.children) for i in items)


@dataclass(frozen=True)
class Added:
    """What a paste made: its top-level jobs (where the page points) and every job it
    created at any depth (what the confirmation counts: a 7-line outline makes 7 jobs)."""

    tops: list[MicroJob]
    created: list[MicroJob]

    @property
    def count(self) -> int:
        return len(self.created)


def add_outline(
    goal: Goal, text: str, *, parent: MicroJob | None = None, actor: str = "owner"
) -> Added:
    """Add the pasted outline under `parent` (or at the goal's top level) in one transaction."""
    if parent is not None:
        return split_outline(parent, text, actor=actor)
    items = parse_outline(text)
    specs = to_new_jobs(items)
    created = create_subtree(goal, None, specs, actor=actor)
    note(goal, "outline_added", actor=actor, jobs=len(created))
    db.session.commit()
    return Added(_tops(created, None), created)


def split_outline(job: MicroJob, text: str, *, actor: str = "owner") -> Added:
    """Split `job` into the pasted outline: children, grandchildren... in ONE transaction."""
    items = parse_outline(text)
    if job.status not in (Status.DRAFT, Status.READY):
        raise InvalidTransition(
            job.id, job.status, "split", ["only draft or ready jobs split; work is under way"]
        )
    specs = to_new_jobs(items)
    created = create_subtree(job.goal, job, specs, actor=actor)
    tops = _tops(created, job.id)
    note(job, "job_split", actor=actor, children=[c.id for c in tops], jobs=len(created))
    db.session.commit()
    return Added(tops, created)


def _tops(created: list[MicroJob], parent_id: int | None) -> list[MicroJob]:
    return [j for j in created if j.parent_id == parent_id]
