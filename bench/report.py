"""Benchmark figures: one row per figure, printed as a table and written to bench/results/.

Each row is {"name", "value", "unit", "floor", "ratio", "target"} (floor, ratio, target may
be None). `ratio` is product / floor for rates, floor / product would hide which way is
better, so the row's unit says it: jobs/s and req/s are better higher, ms and MB lower.
Figures are printed, never asserted: a benchmark fails only when it breaks.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    name: str
    value: float
    unit: str
    floor: float | None = None
    target: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.floor in (None, 0) or self.value is None:
            return None
        return round(self.value / self.floor, 2)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["value"] = _round(self.value)
        data["floor"] = _round(self.floor)
        return {k: data[k] for k in ("name", "value", "unit", "floor", "ratio", "target")}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def publish(name: str, rows: list[Row], note: str = "") -> Path:
    """Print the table and write bench/results/<name>.json; returns the file."""
    width = max(len(r.name) for r in rows)
    print(f"\n{name}{f' ({note})' if note else ''}")
    print(f"  {'figure':<{width}}  {'product':>12}  {'floor':>12}  {'ratio':>6}  target")
    for r in rows:
        floor = "-" if r.floor is None else f"{r.floor:.2f}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        print(f"  {r.name:<{width}}  {r.value:>9.2f} {r.unit:<2}  {floor:>12}  {ratio:>6}  "
              f"{r.target or ''}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    print(f"  -> {path.relative_to(RESULTS.parent.parent)}")
    return path
