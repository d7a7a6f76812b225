"""Small inline SVG charts for the key figures: bars with their values written on them, no script needed."""

from __future__ import annotations

import html
from collections.abc import Sequence

BAR_HEIGHT = 22
GAP = 8
LABEL_WIDTH = 170
CHART_WIDTH = 560


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> str:
    """Horizontal bars, one per (label, value); each value is also written as text beside its bar."""
    if not items:
        return ""
    top = max((value for _, value in items), default=0) or 1
    span = CHART_WIDTH - LABEL_WIDTH - 90
    rows = []
    for i, (label, value) in enumerate(items):
        y = i * (BAR_HEIGHT + GAP)
        width = max(span * value / top, 1 if value else 0)
        shown = f"{value:,.0f}".replace(",", ".") if float(value).is_integer() else f"{value:,.1f}"
        baseline = f'y="{BAR_HEIGHT * 0.7:.0f}"'
        rows.append(
            f'<g transform="translate(0 {y})">'
            f'<text x="{LABEL_WIDTH - 6}" {baseline} text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="2" width="{width:.1f}" height="{BAR_HEIGHT - 4}" class="bar"/>'
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" {baseline}>{html.escape(shown + unit)}</text>'
            "</g>"
        )
    height = len(items) * (BAR_HEIGHT + GAP)
    name = html.escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {height}" role="img" '
        f'aria-label="{name}" class="bars"><title>{name}</title>{"".join(rows)}</svg>'
    )
