"""Greedy text placement for labelled scatter plots (taxonomy clusters, entropy collapse).

`label_positions(x, y, labels)` picks, point by point, the first plotly `textposition` whose
estimated label box overlaps neither an earlier label nor a marker. Boxes are estimated in
pixels for a plot area of `width` x `height` (about 6.5 px per character at font size 10), so
the result is a heuristic: it removes the common overprints, not every one in every size.
"""

from __future__ import annotations

from collections.abc import Sequence

CANDIDATES = (
    "top center",
    "bottom center",
    "middle right",
    "middle left",
    "top right",
    "bottom left",
    "top left",
    "bottom right",
)


def _box(px: float, py: float, text: str, position: str, char_w: float, line_h: float):
    """(x0, y0, x1, y1) in pixels of a label at `position` around point (px, py)."""
    w, gap = char_w * len(text), 6.0
    vertical, horizontal = position.split()
    x0 = {"center": px - w / 2, "right": px + gap, "left": px - gap - w}[horizontal]
    y0 = {"middle": py - line_h / 2, "top": py + gap, "bottom": py - gap - line_h}[vertical]
    return x0, y0, x0 + w, y0 + line_h


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_positions(
    x: Sequence[float],
    y: Sequence[float],
    labels: Sequence[str],
    *,
    width: float = 780.0,
    height: float = 360.0,
    char_w: float = 6.5,
    line_h: float = 13.0,
) -> list[str]:
    """A textposition per point, chosen greedily to avoid overlapping labels and markers."""
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if not xs:
        return []
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    pixels = [
        ((a - min(xs)) / span_x * width, (b - min(ys)) / span_y * height)
        for a, b in zip(xs, ys, strict=True)
    ]  # [point] (px, py)
    markers = [(px - 4, py - 4, px + 4, py + 4) for px, py in pixels]
    placed: list[tuple[float, float, float, float]] = []
    chosen = []
    for i, ((px, py), text) in enumerate(zip(pixels, labels, strict=True)):
        others = markers[:i] + markers[i + 1 :]
        best = CANDIDATES[0]
        for position in CANDIDATES:
            box = _box(px, py, str(text), position, char_w, line_h)
            if not any(_overlap(box, b) for b in placed + others):
                best = position
                break
        placed.append(_box(px, py, str(text), best, char_w, line_h))
        chosen.append(best)
    return chosen
