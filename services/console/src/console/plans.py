"""Market plans drawn as inline SVG from the stalls' coordinates: readable offline, no map tiles needed."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

METRES_PER_DEGREE = 111_320.0
STALL_DEPTH_M = 2.5
MARGIN_M = 4.0


@dataclass(frozen=True)
class StallMark:
    """How one stall is drawn: its state decides the style, `label` is written on it (never colour alone)."""

    state: str = "free"  # free | chosen | taken | own | found
    label: str = ""
    title: str = ""


@dataclass(frozen=True)
class _Placed:
    number: str
    row: str
    x: float
    y: float
    length: float
    angle: float


def _project(stalls: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], float, float]]:
    lat0 = sum(float(s["lat"]) for s in stalls) / len(stalls)
    lon0 = sum(float(s["lon"]) for s in stalls) / len(stalls)
    scale_x = METRES_PER_DEGREE * math.cos(math.radians(lat0))
    return [
        (s, (float(s["lon"]) - lon0) * scale_x, -(float(s["lat"]) - lat0) * METRES_PER_DEGREE) for s in stalls
    ]


def _placed(plan: Mapping[str, Any]) -> list[_Placed]:
    """Stalls in local metres; each row's direction comes from its first and last stall."""
    rows = plan.get("rows", [])
    flat = [dict(stall, row=row["name"]) for row in rows for stall in row.get("stalls", [])]
    if not flat:
        return []
    projected = _project(flat)
    angles: dict[str, float] = {}
    for row in rows:
        points = [(x, y) for s, x, y in projected if s["row"] == row["name"]]
        if len(points) >= 2:
            (x1, y1), (x2, y2) = points[0], points[-1]
            angles[row["name"]] = math.degrees(math.atan2(y2 - y1, x2 - x1))
    return [
        _Placed(str(s["number"]), str(s["row"]), x, y, float(s.get("length_m", 3)), angles.get(s["row"], 0.0))
        for s, x, y in projected
    ]


def plan_svg(
    plan: Mapping[str, Any],
    marks: Mapping[str, StallMark] | None = None,
    *,
    title: str,
    interactive: bool = False,
) -> str:
    """The plan as SVG; each stall a `g.stall[data-stall]` whose state is a class and a written label."""
    stalls = _placed(plan)
    if not stalls:
        return ""
    marks = marks or {}
    reach = max(s.length for s in stalls)
    xs = [s.x for s in stalls]
    ys = [s.y for s in stalls]
    left, top = min(xs) - reach - MARGIN_M, min(ys) - reach - MARGIN_M
    width, height = max(xs) - min(xs) + 2 * (reach + MARGIN_M), max(ys) - min(ys) + 2 * (reach + MARGIN_M)
    body = "".join(_stall(s, marks.get(s.number, StallMark()), interactive) for s in stalls)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{left:.1f} {top:.1f} {width:.1f} {height:.1f}" '
        f'role="img" aria-label="{html.escape(title)}" class="market-plan">'
        f"<title>{html.escape(title)}</title>{body}</svg>"
    )


def _stall(stall: _Placed, mark: StallMark, interactive: bool) -> str:
    length = max(stall.length - 0.3, 0.5)
    tooltip = html.escape(mark.title or stall.number)
    label = html.escape(mark.label) if mark.label else ""
    number = html.escape(stall.number)
    extra = ' data-pick="1"' if interactive else ""
    text_size = min(1.1, length / 3.2)
    lines = f'<text x="0" y="{-0.1:.1f}" font-size="{text_size:.2f}">{number}</text>'
    if label:
        lines += f'<text x="0" y="{text_size + 0.05:.2f}" font-size="{text_size * 0.8:.2f}">{label}</text>'
    return (
        f'<g class="stall {html.escape(mark.state)}" data-stall="{number}"{extra} '
        f'transform="translate({stall.x:.2f} {stall.y:.2f}) rotate({stall.angle:.1f})">'
        f"<title>{tooltip}</title>"
        f'<rect x="{-length / 2:.2f}" y="{-STALL_DEPTH_M / 2:.2f}" width="{length:.2f}" '
        f'height="{STALL_DEPTH_M:.2f}" rx="0.2"/>{lines}</g>'
    )


def stalls_of(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every stall with its row name, in plan order."""
    return [dict(stall, row=row["name"]) for row in plan.get("rows", []) for stall in row.get("stalls", [])]
