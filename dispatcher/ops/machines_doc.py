"""The state machines as Markdown tables, read from dispatcher/lifecycle/ itself, so the
document (docs/state-machines.md, `dispatcher machines`) cannot drift from the code."""

from __future__ import annotations

from dispatcher import lifecycle
from dispatcher.lifecycle.machine import Machine

#: the machines in the order a job meets them
MACHINES = ("JOB", "DISPATCH", "ASSIGNMENT", "DELIVERY", "INBOUND", "PUSH", "OUTBOX")


def machines() -> list[Machine]:
    return [getattr(lifecycle, name) for name in MACHINES if hasattr(lifecycle, name)]


def render_markdown() -> str:
    parts = []
    for machine in machines():
        states = ", ".join(f"`{s}`" for s in machine.states)
        lines = [
            f"### {machine.entity} (`{machine.states.__name__}`, column `{machine.attr}`)",
            "",
            f"States: {states}.",
            "",
            "| action | from | to |",
            "|---|---|---|",
        ]
        for action, (sources, dest) in machine.table.items():
            ordered = [s for s in machine.states if s in sources]
            lines.append(f"| `{action}` | {', '.join(ordered)} | {dest} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
