"""Hand-written inline SVG for the report: heatmaps, step histograms and bar charts.

No library and no fonts or images of its own: the page stays one self-contained file. Every user
string (cell and tensor names) is escaped.
"""
from __future__ import annotations

from html import escape

import numpy as np

from .figures import ROLE_COLORS, ROLE_TITLES, BlockFigure, GateHistogram

# Diverging scale, negative blue through white to positive red; odd so that zero is its own level.
LEVELS = 21
_NEG, _MID, _POS = (33, 102, 172), (247, 247, 247), (178, 24, 43)
NONFINITE_COLOR = "#000000"


def _mix(a, b, t):
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))


PALETTE = [_mix(_NEG, _MID, i / (LEVELS // 2)) for i in range(LEVELS // 2)] + \
          [_mix(_MID, _POS, i / (LEVELS // 2)) for i in range(LEVELS // 2 + 1)]


def levels(drawn: np.ndarray, scale: float) -> np.ndarray:
    """Palette index per drawn cell; -1 for NaN."""
    if scale <= 0:
        idx = np.full(drawn.shape, LEVELS // 2)
    else:
        with np.errstate(invalid="ignore"):
            idx = np.rint((np.clip(drawn / scale, -1.0, 1.0) + 1.0) * (LEVELS // 2))
    idx = np.where(np.isnan(drawn), -1, idx)
    return idx.astype(int)


def heatmap(fig: BlockFigure, *, max_width: int = 260, max_height: int = 200) -> str:
    """One block as an SVG heatmap: one path per colour, runs of equal colour merged per row."""
    idx = levels(fig.drawn, fig.color_scale)
    rows, cols = idx.shape
    cell = max(1.0, min(22.0, max_width / cols, max_height / rows))
    width = round(cols * cell)
    height = max(12, round(rows * cell))
    paths: dict[int, list[str]] = {}
    for y in range(rows):
        row = idx[y]
        start = 0
        for x in range(1, cols + 1):
            if x == cols or row[x] != row[start]:
                run = x - start
                paths.setdefault(int(row[start]), []).append(f"M{start} {y}h{run}v1h-{run}z")
                start = x
    parts = [f'<path fill="{NONFINITE_COLOR if k < 0 else PALETTE[k]}" d="{"".join(d)}"/>'
             for k, d in sorted(paths.items())]
    label = escape(f"{fig.title}, {fig.caption}")
    return (f'<svg class="heat" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {cols} {rows}" width="{width}" '
            f'height="{height}" preserveAspectRatio="none" shape-rendering="crispEdges" role="img" '
            f'aria-label="{label}"><title>{label}</title>{"".join(parts)}</svg>')


def colour_legend() -> str:
    """A horizontal bar of the palette from -max to +max."""
    step = 8
    rects = "".join(f'<rect x="{i * step}" y="0" width="{step}" height="10" fill="{c}"/>' for i, c in enumerate(PALETTE))
    w = step * LEVELS
    return (f'<svg class="legend" xmlns="http://www.w3.org/2000/svg" width="{w + 110}" height="24" role="img" '
            f'aria-label="colour scale">{rects}<rect x="{w + 12}" y="0" width="10" height="10" '
            f'fill="{NONFINITE_COLOR}"/>'
            f'<text x="0" y="22">-max</text><text x="{w / 2}" y="22" text-anchor="middle">0</text>'
            f'<text x="{w}" y="22" text-anchor="end">+max</text><text x="{w + 26}" y="9">NaN / Inf</text></svg>')


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def histogram(h: GateHistogram, *, width: int = 300, height: int = 130) -> str:
    """Step outlines of each role's value counts over the gate's shared bins."""
    left, bottom, top = 34, 18, 6
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max((int(c.max()) for c in h.counts.values()), default=1) or 1
    n = len(h.edges) - 1

    def xy(i, count):
        return f"{left + plot_w * i / n:.1f},{top + plot_h * (1 - count / peak):.1f}"

    lines = []
    for role, counts in h.counts.items():
        pts = [xy(0, 0)]
        for i, c in enumerate(counts):
            pts += [xy(i, c), xy(i + 1, c)]
        pts.append(xy(n, 0))
        lines.append(f'<polyline fill="none" stroke="{ROLE_COLORS[role]}" stroke-width="1.5" points="{" ".join(pts)}">'
                     f'<title>{escape(ROLE_TITLES[role])}</title></polyline>')
    zero = ""
    if h.edges[0] < 0 < h.edges[-1]:
        lo, hi = float(h.edges[0]) / 2, float(h.edges[-1]) / 2  # halves: hi - lo may not fit a float
        x0 = left + plot_w * (-lo / (hi - lo))
        zero = f'<line class="zero" x1="{x0:.1f}" y1="{top}" x2="{x0:.1f}" y2="{top + plot_h}"/>'
    axis = (f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>'
            f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>'
            f'<text x="{left - 3}" y="{top + 8}" text-anchor="end">{peak}</text>'
            f'<text x="{left - 3}" y="{top + plot_h}" text-anchor="end">0</text>'
            f'<text x="{left}" y="{height - 4}">{_fmt(h.edges[0])}</text>'
            f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end">{_fmt(h.edges[-1])}</text>')
    label = escape(f"{h.gate} gate: value histogram")
    return (f'<svg class="hist" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{label}"><title>{label}</title>{zero}{axis}{"".join(lines)}</svg>')


def bars(labels: list[str], counts: list[int], *, title: str, width: int = 330, height: int = 140) -> str:
    """A bar chart of counts with a label under each bar."""
    left, bottom, top = 8, 30, 14
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max(counts, default=0) or 1
    slot = plot_w / max(len(counts), 1)
    out = []
    for i, (lab, c) in enumerate(zip(labels, counts)):
        x = left + i * slot
        h = plot_h * c / peak
        out.append(f'<rect class="bar" x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot - 2, 1):.1f}" '
                   f'height="{h:.1f}"><title>{escape(lab)}: {c}</title></rect>')
        out.append(f'<text class="tick" x="{x + slot / 2:.1f}" y="{top + plot_h + 11}" text-anchor="middle">'
                   f'{escape(lab)}</text>')
        if c:
            out.append(f'<text x="{x + slot / 2:.1f}" y="{top + plot_h - h - 2:.1f}" text-anchor="middle">{c}</text>')
    axis = (f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>'
            f'<text x="{left + plot_w / 2:.1f}" y="{height - 3}" text-anchor="middle">{escape(title)}</text>')
    return (f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{axis}{"".join(out)}</svg>')

