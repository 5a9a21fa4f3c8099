"""Schemathesis against the live app (WSGI, real database and Redis): every operation of
/api/openapi.json, positive and negative cases generated from the schema, every check on.
A 5xx, an answer that does not match its schema, or a status the description does not
declare fails the run.

Schemathesis' own pytest plugin does not run under pytest 9 yet ('Function' object has no
attribute '_nodeid'), so each operation's Hypothesis strategy is driven here with @given.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from dispatcher.auth_tokens import issue_token
from dispatcher.planning import tree

from .helpers import make_owner

pytestmark = pytest.mark.api_fuzz

#: cases per operation and mode, bounded so the run stays within minutes on two shared cores
MAX_EXAMPLES = 15
#: Every check on. Schema-valid data may still be refused with 422 for rules no JSON Schema
#: can state (price x assignments, a budget below what is spent, an unknown channel), so
#: 422 counts as an accepted answer to positive data; everything else is as shipped.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "404", "409", "422", "429"]
"""


@pytest.fixture
def bearer(app) -> dict[str, str]:
    """Ann's token, and rows with small ids so generated ids sometimes hit real ones."""
    ann = make_owner("ann@example.com")
    goal = tree.create_goal(ann.id, title="52 guest posts", budget_cents=10_000)
    parent = tree.add_job(goal, title="Write posts")
    tree.add_job(parent, title="Post one", mode="keep")
    return {"Authorization": f"Bearer {issue_token(ann, 'fuzz').secret}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_keeps_its_contract(app, bearer, mode):
    config = SchemathesisConfig.from_str(CONFIG)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 24
    failures: dict[str, str] = {}
    cases = 0

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case):
            nonlocal cases
            cases += 1
            case.call_and_validate(headers=bearer)

        try:
            run()
        except Exception as exc:  # one operation's failure must not hide the others'
            failures[operation.label] = str(exc)[:2000]

    print(f"\nschemathesis {mode}: {len(operations)} operations, {cases} cases")
    assert failures == {}
