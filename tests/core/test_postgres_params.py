"""On PostgreSQL (psycopg), statements carry PostgreSQL's own $1 placeholders to a raw cursor
(issue 12): psycopg no longer parses each statement in Python to rewrite %(name)s, which cost
0.2 s of CPU in a 2,000-job import."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text

from dispatcher import create_app
from dispatcher.extensions import db
from dispatcher.models import Goal


def test_a_psycopg_engine_sends_dollar_placeholders_to_a_raw_cursor(tmp_path, redis_url):
    psycopg = pytest.importorskip("psycopg")
    app = create_app(
        {
            "instance_path": tmp_path / "instance",
            "database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "redis_url": redis_url,
            "testing": True,
        }
    )
    with app.app_context():
        engine = db.engine  # nothing connects: the options are what is checked
        assert engine.dialect.paramstyle == "numeric_dollar"
        compiled = select(Goal.id).where(Goal.title == bindparam("t")).compile(engine)
        assert "$1" in str(compiled)
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["cursor_factory"] is psycopg.RawCursor


def test_statements_with_percent_signs_and_parameters_run(app, database_url):
    """A literal % and parameters in one statement: fine with either paramstyle."""
    with app.app_context():
        got = db.session.execute(text("SELECT :a || '%' || :b"), {"a": "50", "b": " off"}).scalar()
        assert got == "50% off"
        rows = db.session.execute(
            select(Goal.id).where(Goal.title.like("%x%"), Goal.id.in_([1, 2, 3]))
        ).all()
        assert rows == []
