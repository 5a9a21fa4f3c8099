"""Playbooks: the shipped files, validation errors that name file and field, parameters,
applying one in one transaction, and saving a subtree as the owner's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from dispatcher.errors import InvalidTransition, NotFound
from dispatcher.extensions import db
from dispatcher.models import Event, MicroJob, OwnerPlaybook
from dispatcher.planning import playbooks, tree
from dispatcher.planning.outline import add_outline
from dispatcher.planning.playbook_schema import PlaybookError, validate_playbook
from dispatcher.planning.playbooks import (
    PLAYBOOK_DIR,
    apply_playbook,
    get_playbook,
    load_file,
    parse_params,
    save_subtree_as_playbook,
    shipped_playbooks,
)

SHIPPED = {
    "guest_post",
    "blog_post",
    "website_build",
    "social_promotion",
    "article_refresh",
    "expert_outreach",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def minimal(**overrides) -> dict:
    data = {"name": "p", "title": "P", "jobs": [{"title": "one"}]}
    data.update(overrides)
    return data


def count_jobs() -> int:
    return db.session.scalar(select(func.count()).select_from(MicroJob))


# --- the shipped files --------------------------------------------------------------------------


def test_at_least_six_playbooks_ship_and_all_validate():
    books = {b.key: b for b in shipped_playbooks()}
    assert set(books) >= SHIPPED
    for path in PLAYBOOK_DIR.glob("*.yaml"):
        assert load_file(path).name == path.stem


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("guest_post", range(25, 36)),  # article 002: 25-35 activities for one guest post
        ("blog_post", range(15, 40)),
        ("website_build", range(25, 60)),
    ],
)
def test_shipped_sizes_match_the_articles(key, expected):
    assert get_playbook(key, owner_id=0).size() in expected


def test_blog_post_and_website_build_have_the_parts_article_003_names():
    blog = yaml.safe_load((PLAYBOOK_DIR / "blog_post.yaml").read_text())
    tops = " ".join(j["title"].lower() for j in blog["jobs"])
    for part in ("title", "body", "call to action", "internal links", "media"):
        assert part in tops
    site = yaml.safe_load((PLAYBOOK_DIR / "website_build.yaml").read_text())
    tops = " ".join(j["title"].lower() for j in site["jobs"])
    for part in ("domain", "hosting", "design", "page content", "metadata"):
        assert part in tops


# --- validation messages ------------------------------------------------------------------------


def test_error_names_file_index_and_field(tmp_path):
    path = write(
        tmp_path,
        "guest_post.yaml",
        """
name: guest_post
title: Guest post
jobs:
  - title: one
  - title: two
  - title: three
    estimate_minutes: soon
""",
    )
    with pytest.raises(PlaybookError) as excinfo:
        load_file(path)
    assert str(excinfo.value) == "guest_post.yaml: jobs[2].estimate_minutes: Not a valid integer."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": "P", "jobs": [{"title": "x"}]}, "name: Missing data for required field."),
        (minimal(jobs=[]), "jobs: Length must be between 1 and 500."),
        (minimal(jobs=[{"title": "x", "mode": "outsource"}]), "jobs[0].mode: Must be one of"),
        (
            minimal(jobs=[{"title": "x", "estimat_minutes": 5}]),
            "jobs[0].estimat_minutes: Unknown field.",
        ),
        (minimal(jobs=[{"title": "x", "price": "cheap"}]), "jobs[0].price: Not a valid amount"),
        (
            minimal(jobs=[{"title": "x", "jobs": [{"brief": "no title"}]}]),
            "jobs[0].jobs[0].title: Missing data",
        ),
        (minimal(jobs=[{"title": "Pitch {n}"}]), "jobs[0].title: unknown placeholder {n}"),
        (minimal(jobs=[{"title": "x {", "repeat": 2}]), "jobs[0].title: stray '{'"),
        (
            minimal(jobs=[{"title": "x", "repeat": "pitches"}]),
            "jobs[0].repeat: 'pitches' is not an integer or list parameter",
        ),
        (minimal(jobs=[{"title": "x", "when": "nope"}]), "jobs[0].when: unknown parameter 'nope'"),
        (minimal(jobs=[{"title": "x", "repeat": 0}]), "jobs[0].repeat: Must be between 1 and 500."),
        (minimal(parameters={"n": {"type": "integer"}}), "parameters.n: 'n' is reserved"),
        (minimal(parameters={"k": {"type": "float"}}), "parameters.k.type: Must be one of"),
        (
            minimal(parameters={"k": {"type": "integer", "default": "many"}}),
            "parameters.k.default: Not a valid integer.",
        ),
        (
            minimal(parameters={"k": {"type": "string", "min": 1}}),
            "parameters.k.min: only integer parameters",
        ),
        (minimal(name="Bad Name"), "name: String does not match expected pattern."),
        ([1, 2], "the playbook must be a mapping"),
    ],
)
def test_validation_messages(data, message):
    with pytest.raises(PlaybookError) as excinfo:
        validate_playbook(data, "x.yaml")
    assert f"x.yaml: {message}" in str(excinfo.value)


def test_nested_repeat_scopes_and_placeholders_validate():
    data = minimal(
        parameters={"sites": {"type": "list"}, "k": {"type": "integer", "default": 2}},
        jobs=[
            {
                "title": "Site {n}: {item}",
                "repeat": "sites",
                "jobs": [{"title": "{item} step {n} of {k}", "repeat": "k"}],
            },
            {"title": "Literal {{braces}} stay"},
        ],
    )
    assert validate_playbook(data, "x")["jobs"][0]["repeat"] == "sites"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "name: broken\njobs:\n  - title: [unclosed\n")
    with pytest.raises(PlaybookError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_file(path)


def test_name_must_match_the_file(tmp_path):
    path = write(tmp_path, "one.yaml", "name: two\ntitle: T\njobs: [{title: x}]\n")
    with pytest.raises(PlaybookError, match=r"one.yaml: name: must match the file name"):
        load_file(path)


def test_a_broken_file_in_the_directory_fails_loudly(tmp_path):
    write(tmp_path, "good.yaml", "name: good\ntitle: G\njobs: [{title: x}]\n")
    write(tmp_path, "bad.yaml", "name: bad\ntitle: B\njobs: [{title: x, assignments: 0}]\n")
    with pytest.raises(PlaybookError, match=r"bad.yaml: jobs\[0\].assignments"):
        shipped_playbooks(tmp_path)


# --- parameters and expansion ------------------------------------------------------------------


def test_parse_params_types_defaults_and_errors():
    book = get_playbook("guest_post", owner_id=0)
    values = parse_params(
        book, {"pitches": "5", "sites": "a.example\n\n b.example ", "topic": "SEO"}
    )
    assert values["pitches"] == 5
    assert values["sites"] == ["a.example", "b.example"]
    assert values["followups"] == 3  # default
    assert parse_params(book, {"pitches": ""})["pitches"] == 12  # blank number: the default
    with pytest.raises(PlaybookError) as excinfo:
        parse_params(book, {"pitches": "0", "blocks": "many", "colour": "red"})
    message = str(excinfo.value)
    assert "pitches: Must be greater than or equal to 1 and less than or equal to 50." in message
    assert "blocks: Not a valid integer." in message
    assert "colour: Unknown parameter." in message


def test_expand_repeats_lists_conditions_and_channels():
    book = get_playbook("guest_post", owner_id=0)
    specs, warnings = playbooks.expand(
        book, parse_params(book, {"pitches": 2, "followups": 0}), channels=["fiverr"]
    )
    titles = [s.title for s in specs]
    assert titles[0] == "Find 2 sites that take guest posts about your topic"
    assert "Follow up with interested site owners" not in titles  # when: followups (0)
    pitch = specs[1]
    assert [c.title for c in pitch.children] == ["Pitch email 1 of 2", "Pitch email 2 of 2"]
    edit = next(c for c in specs[2].children if c.title == "Edit the post")
    assert (edit.fields["mode"], edit.fields["channel"]) == ("delegate", "fiverr")
    assert edit.fields["price_cents"] == 1500
    find = specs[0]  # suggests microworkers/mturk/toloka, none installed: left undecided
    assert find.fields["mode"] == "undecided"
    assert "channel" not in find.fields
    assert "Suggested channel: microworkers or mturk or toloka." in find.fields["brief"]
    assert warnings and "microworkers" in warnings[0]

    specs, _ = playbooks.expand(book, parse_params(book, {"sites": ["a.example", "b.example"]}), [])
    titles = [s.title for s in specs]
    assert "Pitch the listed sites" in titles and "Pitch 12 sites" not in titles
    listed = specs[titles.index("Pitch the listed sites")]
    assert [c.title for c in listed.children] == [
        "Pitch email to a.example",
        "Pitch email to b.example",
    ]


def test_expansion_size_is_capped_before_anything_is_built():
    book = playbooks.from_definition(
        minimal(
            parameters={"k": {"type": "integer", "default": 100}},
            jobs=[{"title": "{n}", "repeat": "k", "jobs": [{"title": "{n}", "repeat": "k"}]}],
        ),
        "big",
    )
    with pytest.raises(PlaybookError, match="over 5000 jobs"):
        playbooks.expand(book, parse_params(book, {}), [])


# --- applying and saving -----------------------------------------------------------------------


def test_apply_to_a_node_in_one_transaction(goal):
    node = tree.add_job(goal, title="Guest post #1")
    result = apply_playbook(node, get_playbook("guest_post", 0), {"pitches": 3, "blocks": 2})
    assert result.created == 1 + (1 + 3) + (1 + 3) + (1 + 1 + 2 + 1) + 1 + 1
    assert [j.title for j in result.jobs][:2] == [
        "Find 3 sites that take guest posts about your topic",
        "Pitch 3 sites",
    ]
    assert all(j.parent_id == node.id for j in result.jobs)
    assert count_jobs() == 1 + result.created
    check = db.session.scalars(
        select(MicroJob).where(MicroJob.title == "Check the post was published")
    ).one()
    assert check.deliverable_kind == "url"
    assert check.acceptance_criteria[0] == "the live URL"
    assert check.price_cents == 100
    kinds = db.session.scalars(select(Event.kind).where(Event.goal_id == goal.id)).all()
    assert "playbook_applied" in kinds


def test_apply_uses_an_installed_channel(goal):
    book = playbooks.from_definition(
        minimal(jobs=[{"title": "x", "mode": "delegate", "channel": ["nowhere", "sandbox"]}]), "t"
    )
    result = apply_playbook(goal, book)  # the app's registry has the sandbox adapter
    assert (result.jobs[0].mode, result.jobs[0].channel) == ("delegate", "sandbox")
    assert result.warnings == []


def test_apply_with_bad_params_writes_nothing(goal):
    with pytest.raises(PlaybookError, match="pitches"):
        apply_playbook(goal, get_playbook("guest_post", 0), {"pitches": "lots"})
    assert count_jobs() == 0


def test_apply_refuses_a_started_leaf(goal):
    job = tree.add_job(goal, title="x", mode="keep")
    tree.act(job, "start")
    with pytest.raises(InvalidTransition):
        apply_playbook(job, get_playbook("blog_post", 0))


def test_save_subtree_and_apply_it_elsewhere(goal, owner):
    root = tree.add_job(goal, title="Week {1}")
    add_outline(goal, "Pitch\n  email a\n  email b\nWrite", parent=root)
    email_a = db.session.scalars(select(MicroJob).where(MicroJob.title == "email a")).one()
    tree.update_job(
        email_a, estimate_minutes=15, price_cents=250, mode="delegate", channel="sandbox",
        acceptance_criteria=["names the editor"], deliverable_kind="url",
    )  # fmt: skip
    row = save_subtree_as_playbook(root, "weekly", description="my week")
    assert row.owner_id == owner.id
    book = get_playbook("my:weekly", owner.id)
    assert book.origin == "owner" and book.title == "Week {1}"
    assert [j["title"] for j in book.jobs] == ["Pitch", "Write"]  # the children, not the root

    other = tree.add_job(goal, title="Week 2")
    result = apply_playbook(other, book)
    assert result.created == 4
    copy = db.session.scalars(
        select(MicroJob).where(MicroJob.title == "email a", MicroJob.id != email_a.id)
    ).one()
    assert copy.parent.parent_id == other.id
    assert (copy.estimate_minutes, copy.price_cents, copy.mode, copy.channel) == (
        15, 250, "delegate", "sandbox",
    )  # fmt: skip
    assert (copy.acceptance_criteria, copy.deliverable_kind) == (["names the editor"], "url")

    with_root = save_subtree_as_playbook(root, "weekly-root", include_root=True)
    book = get_playbook(f"my:{with_root.name}", owner.id)
    assert [j["title"] for j in book.jobs] == ["Week {{1}}"]  # braces kept literal
    result = apply_playbook(goal, book)
    assert result.jobs[0].title == "Week {1}"

    with pytest.raises(ValueError, match="already have a playbook called 'weekly'"):
        save_subtree_as_playbook(root, "weekly")
    with pytest.raises(ValueError, match="name: use 1-60 lowercase"):
        save_subtree_as_playbook(root, "Not OK!")


def test_owner_playbooks_are_private(goal, owner, other_owner):
    save_subtree_as_playbook(tree.add_job(goal, title="leaf"), "mine")
    assert [b.key for b in playbooks.owner_playbooks(owner.id)] == ["my:mine"]
    assert playbooks.owner_playbooks(other_owner.id) == []
    with pytest.raises(NotFound):
        get_playbook("my:mine", other_owner.id)
    listed = [b.key for b in playbooks.list_playbooks(owner.id)]
    assert set(listed) >= SHIPPED and listed[-1] == "my:mine"


# --- pages --------------------------------------------------------------------------------------


def test_playbook_pages_list_show_and_download(ann, goal):
    page = ann.get("/playbooks").get_data(as_text=True)
    for key in SHIPPED:
        assert f"/playbooks/{key}" in page
    page = ann.get("/playbooks/guest_post").get_data(as_text=True)
    assert "Pitch email {n} of {pitches}" in page and "Pitch emails" in page
    response = ann.get("/playbooks/guest_post/yaml")
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.data)["name"] == "guest_post"
    assert ann.get("/playbooks/no_such_thing").status_code == 404


def test_pick_fill_and_apply_through_the_page(ann, goal):
    node = tree.add_job(goal, title="Guest post #1")
    page = ann.get(f"/goals/{goal.id}/playbooks?job={node.id}").get_data(as_text=True)
    assert f"/goals/{goal.id}/playbooks/guest_post/apply?job={node.id}" in page
    form = ann.get(f"/goals/{goal.id}/playbooks/guest_post/apply?job={node.id}")
    assert form.status_code == 200
    assert 'name="p.pitches" value="12"' in form.get_data(as_text=True)
    response = ann.post(
        f"/goals/{goal.id}/playbooks/guest_post/apply",
        data={"job": node.id, "action": "apply", "p.pitches": "2", "p.sites": "", "p.topic": "SEO",
              "p.followups": "1", "p.blocks": "1"},
    )  # fmt: skip
    assert response.status_code == 302
    db.session.expire_all()
    titles = [n.job.title for n in tree.walk(tree.goal_tree(goal))]
    assert (
        "Pitch email 2 of 2" in titles and "Find 2 sites that take guest posts about SEO" in titles
    )
    assert titles.count("Guest post #1") == 1


def test_apply_page_shows_parameter_errors_and_creates_nothing(ann, goal):
    before = count_jobs()
    response = ann.post(
        f"/goals/{goal.id}/playbooks/guest_post/apply",
        data={"action": "apply", "p.pitches": "999"},
    )
    assert response.status_code == 400
    assert "pitches: Must be greater than or equal to 1" in response.get_data(as_text=True)
    assert count_jobs() == before


def test_save_subtree_through_the_page_then_delete_it(ann, goal, owner):
    root = tree.add_job(goal, title="Launch")
    add_outline(goal, "a\nb", parent=root)
    response = ann.post(
        f"/goals/{goal.id}/jobs/{root.id}/save-playbook", data={"name": "launch", "title": ""}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/playbooks/my:launch")
    assert "Launch" in ann.get("/playbooks").get_data(as_text=True)
    bad = ann.post(f"/goals/{goal.id}/jobs/{root.id}/save-playbook", data={"name": "launch"})
    assert bad.status_code == 400
    assert "already have a playbook" in bad.get_data(as_text=True)
    assert ann.post("/playbooks/guest_post/delete").status_code == 302  # refused, flashed
    assert ann.post("/playbooks/my:launch/delete").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(OwnerPlaybook)) == 0
