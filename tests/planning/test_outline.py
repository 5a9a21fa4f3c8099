"""Pasted lists become trees: the parser on its own, then split_outline against the database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Event, MicroJob
from dispatcher.planning import tree
from dispatcher.planning.outline import add_outline, parse_outline, split_outline


def shape(items) -> list:
    """A compact view: a title, or (title, [children]) for a parent; '✓' marks done."""
    out = []
    for item in items:
        title = f"{item.title} ✓" if item.done else item.title
        out.append((title, shape(item.children)) if item.children else title)
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb\nc", ["a", "b", "c"]),
        ("a\n  b\n  c\nd", [("a", ["b", "c"]), "d"]),
        ("a\n\tb\n\t\tc\n\td", [("a", [("b", ["c"]), "d"])]),
        ("a\n    b\n        c\n    d\ne", [("a", [("b", ["c"]), "d"]), "e"]),
        # bullets of every kind, numbered lists, mixed
        ("- a\n- b\n  - c", ["a", ("b", ["c"])]),
        ("* a\n+ b\n• c", ["a", "b", "c"]),
        ("1. a\n2. b\n   1) c\n10. d", ["a", ("b", ["c"]), "d"]),
        # Markdown checklists: [x] is done, [ ] is not; bare checkboxes too
        ("- [ ] a\n- [x] b\n- [X] c\n[ ] d\n[x] e", ["a", "b ✓", "c ✓", "d", "e ✓"]),
        ("- [ ] parent\n  - [x] child", [("parent", ["child ✓"])]),
        # blank lines and bare bullets are ignored
        ("\n\na\n\n   \n  b\n-\n- [ ]\nc\n\n", [("a", ["b"]), "c"]),
        # a block pasted with a common indentation is taken as if it had none
        ("    a\n      b\n    c", [("a", ["b"]), "c"]),
        # a dedent between two levels joins the deeper level's parent (sensible, not an error)
        ("a\n    b\n  c", [("a", ["b", "c"])]),
        ("a\n  b\n      c\n    d\ne", [("a", [("b", ["c", "d"])]), "e"]),
        # jumping two levels at once still makes a child, not a great-grandchild
        ("a\n        b", [("a", ["b"])]),
        # tabs and spaces: a tab counts as four columns
        ("a\n\tb\n    c", [("a", ["b", "c"])]),
        # Windows line endings and extra inner whitespace
        ("a\r\n  b   with   spaces\r\n", [("a", ["b with spaces"])]),
        # numbers that are part of the title are kept
        (
            "3.5 hours of editing\n2024 plan\n-5 degrees",
            ["3.5 hours of editing", "2024 plan", "-5 degrees"],
        ),
        # non-breaking spaces used for indentation (pasted from Word)
        ("a\n\u00a0\u00a0b", [("a", ["b"])]),
    ],
)
def test_parse_outline_shapes(text, expected):
    assert shape(parse_outline(text)) == expected


def test_parse_outline_keeps_line_numbers():
    items = parse_outline("\n- a\n\n  - b\n")
    assert items[0].line == 2
    assert items[0].children[0].line == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  a\nb", "line 1: 'a' is indented, but there is no item above it"),
        ("\n\n\t- orphan\n- root", "line 3: 'orphan' is indented"),
        ("", "nothing to add"),
        ("   \n - \n- [ ]", "nothing to add"),
        ("ok\n" + "x" * 301, "line 2: the title is 301 characters long; the limit is 300"),
    ],
)
def test_parse_outline_errors_name_the_line(text, message):
    with pytest.raises(ValueError) as excinfo:
        parse_outline(text)
    assert message in str(excinfo.value)


def test_parse_outline_limits_the_number_of_items():
    with pytest.raises(ValueError, match="line 4: more than 3 items"):
        parse_outline("a\nb\nc\nd", max_items=3)


def test_split_outline_creates_the_whole_subtree_in_one_transaction(goal):
    root = tree.add_job(goal, title="Guest post #1")
    text = """
    - Pitch 12 sites
      - [x] Find the sites
      - Pitch email 1
      - Pitch email 2
    - Write the post
      1. Outline
      2. Draft
         - block 1
    - [ ] Send it
    """
    tops = split_outline(root, text).tops
    assert [t.title for t in tops] == ["Pitch 12 sites", "Write the post", "Send it"]
    nodes = tree.goal_tree(goal)
    flat = [(n.depth, n.job.title, n.job.position) for n in tree.walk(nodes)]
    assert flat == [
        (0, "Guest post #1", 0),
        (1, "Pitch 12 sites", 0),
        (2, "Find the sites", 0),
        (2, "Pitch email 1", 1),
        (2, "Pitch email 2", 2),
        (1, "Write the post", 1),
        (2, "Outline", 0),
        (2, "Draft", 1),
        (3, "block 1", 0),
        (1, "Send it", 2),
    ]
    found = db.session.scalars(select(MicroJob).where(MicroJob.title == "Find the sites")).one()
    assert found.status == Status.DONE
    assert found.finished_at is not None
    kinds = db.session.scalars(select(Event.kind).where(Event.goal_id == goal.id)).all()
    assert kinds.count("job_created") == 10
    assert kinds.count("complete") == 1
    assert "job_split" in kinds


def test_split_outline_writes_nothing_when_the_text_is_bad(goal):
    root = tree.add_job(goal, title="root")
    before = db.session.scalar(select(func.count()).select_from(MicroJob))
    with pytest.raises(ValueError, match="line 1"):
        split_outline(root, "  indented first\nthen root")
    assert db.session.scalar(select(func.count()).select_from(MicroJob)) == before


def test_split_outline_refuses_a_job_with_work_under_way(goal):
    job = tree.add_job(goal, title="x", mode="keep")
    tree.act(job, "start")
    with pytest.raises(InvalidTransition):
        split_outline(job, "a\nb")


def test_split_outline_appends_after_existing_children(goal):
    root = tree.add_job(goal, title="root")
    tree.split_job(root, ["first"])
    split_outline(root, "second\nthird")
    children = sorted(root.children, key=lambda c: c.position)
    assert [(c.title, c.position) for c in children] == [
        ("first", 0),
        ("second", 1),
        ("third", 2),
    ]


def test_add_outline_at_the_goal_top_level(goal):
    tree.add_job(goal, title="existing")
    tops = add_outline(goal, "a\n  a1\nb").tops
    assert [t.title for t in tops] == ["a", "b"]
    assert [n.job.title for n in tree.goal_tree(goal)] == ["existing", "a", "b"]
