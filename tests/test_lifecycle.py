"""Every state machine: each legal move, stated here by hand (not read from the tables under
test), lands where it should; every other (state, action) pair raises a clear error."""

from __future__ import annotations

import itertools

import pytest

from dispatcher import lifecycle
from dispatcher.errors import InvalidTransition
from dispatcher.lifecycle import ASSIGNMENT, DELIVERY, DISPATCH, INBOUND, JOB, PUSH, Status

OUT = "dispatched taken delivered in_review revision_requested"
#: machine -> {action: (the states it may start from, the state it ends in)}, written out
LEGAL: dict[str, dict[str, tuple[str, str]]] = {
    "job": {
        "make_ready": ("draft", "ready"),
        "back_to_draft": ("ready", "draft"),
        "start": ("draft ready", "in_progress"),
        "complete": ("draft ready in_progress", "done"),
        "reopen": ("done", "ready"),
        "queue": ("draft ready", "queued"),
        "dispatched": ("queued", "dispatched"),
        "taken": ("dispatched delivered in_review revision_requested", "taken"),
        "delivered": ("dispatched taken revision_requested in_review accepted", "delivered"),
        "start_review": ("delivered", "in_review"),
        "request_revision": (
            "delivered in_review taken dispatched accepted",
            "revision_requested",
        ),  # fmt: skip
        "accept": (f"{OUT} rejected expired", "accepted"),
        "pay": ("accepted", "paid"),
        "reject": (f"{OUT} accepted", "rejected"),
        "withdrawn": ("taken delivered in_review revision_requested", "dispatched"),
        "fail": ("queued dispatched", "failed"),
        "expire": (f"queued {OUT}", "expired"),
        "requeue": ("rejected failed expired cancelled", "queued"),
        "cancel": (f"draft ready in_progress queued {OUT} failed expired rejected", "cancelled"),
    },
    "dispatch": {
        "place": ("pending", "placed"),
        "fail": ("pending", "failed"),
        "cancel": ("pending placed", "cancelled"),
        "close": ("placed", "closed"),
    },
    "assignment": {
        "take": ("open", "taken"),
        "give_back": ("taken", "open"),
        "submit": ("open taken revision_requested", "submitted"),
        "request_revision": ("submitted", "revision_requested"),
        "accept": ("submitted", "accepted"),
        "reverse": ("accepted revision_requested", "submitted"),
        "adopt_approval": (
            "open taken submitted revision_requested rejected expired returned cancelled",
            "accepted",
        ),  # fmt: skip
        "accept_late": ("rejected expired returned cancelled", "accepted"),
        "pay": ("accepted", "paid"),
        "reject": ("submitted", "rejected"),
        "expire": ("open taken", "expired"),
        "return": ("open taken", "returned"),
        "cancel": ("open taken submitted revision_requested", "cancelled"),
    },
    "delivery": {
        "accept": ("submitted late", "accepted"),
        "request_revision": ("submitted", "revision_requested"),
        "reject": ("submitted", "rejected"),
        "close": ("submitted", "closed"),
        "reverse": ("accepted revision_requested", "submitted"),
        "adopt_approval": ("submitted rejected revision_requested late closed", "accepted"),
        "adopt_rejection": ("submitted accepted late", "rejected"),
    },
    "inbound": {
        "apply": ("received", "applied"),
        "quarantine": ("received", "quarantined"),
        "disregard": ("received", "ignored"),
        "retry": ("quarantined", "received"),
    },
    "push": {
        "confirm": ("owed", "pushed"),
        "refuse": ("owed", "refused"),
    },
}
MACHINES = {"job": JOB, "dispatch": DISPATCH, "assignment": ASSIGNMENT, "delivery": DELIVERY,
            "inbound": INBOUND, "push": PUSH}  # fmt: skip
#: states with no way out, stated here
TERMINAL = {"job": {"paid"}, "dispatch": {"failed", "cancelled", "closed"},
            "assignment": {"paid"}, "inbound": {"applied", "ignored", "invalid"},
            "push": {"pushed", "refused", "none"}}  # fmt: skip


def _cases():
    for name, machine in MACHINES.items():
        for state, action in itertools.product(machine.states, LEGAL[name]):
            yield name, str(state), action


@pytest.mark.parametrize(("name", "state", "action"), list(_cases()))
def test_each_move_is_legal_exactly_where_stated(name, state, action):
    machine = MACHINES[name]
    sources, dest = LEGAL[name][action]
    if state in sources.split():
        assert machine.target(state, action, 7) == dest
    else:
        with pytest.raises(InvalidTransition) as info:
            machine.target(state, action, 7)
        message = str(info.value)
        assert f"{name} 7: it is {state}" in message
        assert action.replace("_", " ") in message


@pytest.mark.parametrize("name", list(MACHINES))
def test_no_machine_has_a_move_this_test_does_not_state(name):
    assert set(MACHINES[name].table) == set(LEGAL[name])


@pytest.mark.parametrize(("name", "state"), [(n, s) for n, ss in TERMINAL.items() for s in ss])
def test_terminal_states_have_no_way_out(name, state):
    assert MACHINES[name].allowed_actions(state) == []


def test_unknown_action_is_refused():
    with pytest.raises(InvalidTransition):
        lifecycle.target(Status.READY, "teleport")


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
