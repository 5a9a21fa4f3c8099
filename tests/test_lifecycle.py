"""The state machine: every legal move works, every illegal one raises a clear error."""

from __future__ import annotations

import itertools

import pytest

from dispatcher import lifecycle
from dispatcher.errors import InvalidTransition
from dispatcher.lifecycle import TRANSITIONS, Status


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for s, a in itertools.product(Status, TRANSITIONS) if s not in TRANSITIONS[a][0]],
)
def test_every_illegal_transition_raises(status, action):
    with pytest.raises(InvalidTransition) as info:
        lifecycle.target(status, action, job_id=7)
    message = str(info.value)
    assert f"job 7: it is {status}" in message
    assert action.replace("_", " ") in message


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for a, (sources, _) in TRANSITIONS.items() for s in sources],
)
def test_every_legal_transition_lands_in_its_target(status, action):
    assert lifecycle.target(status, action) == TRANSITIONS[action][1]


def test_unknown_action_is_refused():
    with pytest.raises(InvalidTransition):
        lifecycle.target(Status.READY, "teleport")


def test_paid_is_terminal():
    assert lifecycle.allowed_actions(Status.PAID) == []


@pytest.mark.parametrize(
    ("leaves", "expected"),
    [
        ([], Status.DRAFT),
        (["done", "paid", "accepted"], Status.DONE),
        (["done", "cancelled"], Status.DONE),
        (["cancelled"], Status.CANCELLED),
        (["done", "delivered", "ready"], Status.DELIVERED),
        (["done", "dispatched"], Status.DISPATCHED),
        (["done", "ready"], Status.IN_PROGRESS),
        (["draft", "draft"], Status.DRAFT),
        (["draft", "ready"], Status.READY),
    ],
)
def test_parent_status_is_derived_from_leaves(leaves, expected):
    assert lifecycle.derived_status(iter(leaves)) == expected
