"""A chart of the figures that have a floor: each product figure as a share of its floor,
before issue 12's levers (`bench/results/before/`) and now (`bench/results/`), with the
target drawn where one is a ratio. Written as plain SVG, so it needs nothing installed and
renders on any code host.

    .venv/bin/python -m bench.chart      # -> bench/results/ratios.svg (`make bench` runs it)
"""

from __future__ import annotations

import json
import re
import sys
from html import escape
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BENCHES = ("dispatch", "intake")

WIDTH, LABEL, BAR, GAP = 860, 330, 11, 10
SCALE_MAX = 1.2  # a figure at its floor is 1.0; better than the floor runs off the scale


def _rows(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {_key(r["name"]): r for r in json.loads(path.read_text()) if r.get("floor")}


def _key(name: str) -> str:
    """Names carry run sizes ("1000 jobs", "(731/s)"); compare the figures without them."""
    return re.sub(r"\s*\(?\d[\d,]*(/s| jobs)\)?", "", name).strip(" ,")


def _share(row: dict) -> float | None:
    """Product as a share of its floor, higher is better whatever the unit."""
    if not row.get("value") or not row.get("floor"):
        return None
    if row["unit"] in ("ms", "MB", ""):  # lower is better: the floor's share of the product
        return row["floor"] / row["value"]
    return row["value"] / row["floor"]


def _target_share(row: dict) -> float | None:
    match = re.match(r"\s*(>=|<=)\s*([\d.]+)x floor", str(row.get("target") or ""))
    if not match:
        return None
    x = float(match.group(2))
    return x if match.group(1) == ">=" else 1 / x


def render(before: dict[str, dict], now: dict[str, dict]) -> str:
    names = [n for n in now if _share(now[n]) is not None]
    height = 60 + len(names) * (2 * BAR + GAP + 8) + 30
    span = WIDTH - LABEL - 60

    def x(share: float) -> float:
        return LABEL + span * min(share, SCALE_MAX) / SCALE_MAX

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="14" font-weight="bold">Product as a share of its floor '
        "(1.0 = as fast as the bare stack; higher is better)</text>",
        '<rect x="10" y="32" width="12" height="10" fill="#b0b0b0"/>'
        '<text x="26" y="41">before issue 12</text>'
        '<rect x="140" y="32" width="12" height="10" fill="#2a6fbd"/>'
        '<text x="156" y="41">now</text>'
        '<line x1="250" y1="37" x2="270" y2="37" stroke="#c0392b" stroke-width="2"/>'
        '<text x="274" y="41">target</text>',
    ]
    y = 60
    for name in names:
        out.append(f'<text x="10" y="{y + BAR + 4}">{escape(name[:52])}</text>')
        for offset, rows, colour in ((0, before, "#b0b0b0"), (BAR + 2, now, "#2a6fbd")):
            row = rows.get(name)
            share = _share(row) if row else None
            if share is None:
                continue
            out.append(
                f'<rect x="{LABEL}" y="{y + offset}" width="{x(share) - LABEL:.1f}" '
                f'height="{BAR}" fill="{colour}"/>'
                f'<text x="{x(share) + 4:.1f}" y="{y + offset + BAR - 1}">{share:.2f}</text>'
            )
        target = _target_share(now[name])
        if target is not None:
            out.append(
                f'<line x1="{x(target):.1f}" y1="{y - 2}" x2="{x(target):.1f}" '
                f'y2="{y + 2 * BAR + 4}" stroke="#c0392b" stroke-width="2"/>'
            )
        y += 2 * BAR + GAP + 8
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(
            f'<line x1="{x(tick):.1f}" y1="52" x2="{x(tick):.1f}" y2="{y}" stroke="#ddd"/>'
            f'<text x="{x(tick) - 8:.1f}" y="{y + 14}">{tick:.2f}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def main() -> Path:
    before: dict[str, dict] = {}
    now: dict[str, dict] = {}
    for bench in BENCHES:
        before |= _rows(RESULTS / "before" / f"{bench}.json")
        now |= _rows(RESULTS / f"{bench}.json")
    path = RESULTS / "ratios.svg"
    path.write_text(render(before, now))
    print(f"  -> {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return path


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
