"""The README and docs/ stand on their own (issue 13): every setting is in the README's
table, and nothing points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from dispatcher.config import _OPTIONAL

ROOT = Path(__file__).resolve().parents[2]
BASE_VARIABLES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DISPATCHER_INSTANCE"}


def settings_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, re.M))


def test_every_setting_is_in_the_readme_table():
    variables = BASE_VARIABLES | {var for _, var, _ in _OPTIONAL}
    assert variables - settings_table() == set()


def test_nothing_points_outside_the_repository():
    for path in [ROOT / "README.md", ROOT / "ADDING_AN_ADAPTER.md", *ROOT.glob("docs/*.md")]:
        assert "../shared" not in path.read_text(), path


def test_the_docs_name_the_seven_rules_and_every_state_machine():
    from dispatcher.ops.machines_doc import machines

    architecture = (ROOT / "docs" / "architecture.md").read_text()
    assert len(re.findall(r"^\d\. \*\*", architecture, re.M)) == 7
    tables = (ROOT / "docs" / "state-machines.md").read_text()
    for machine in machines():
        assert f"### {machine.entity} (" in tables, machine.entity
