"""Line charts as standalone SVG text, for the HTML run reports: no matplotlib, no JavaScript.

`line_chart` draws one or more series (epoch on x) with labelled axes, "nice" ticks, a legend
and, when values span more than two decades, a logarithmic y axis. The SVG carries its own width
and height so that it can be embedded as an <img> data URI (the browser test checks every image).
"""
from __future__ import annotations

import math
from html import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
          "#bcbd22"]
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 44  # margins around the plot area, px


def nice_step(span: float, count: int = 5) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten giving about `count` intervals over `span`."""
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)


def linear_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float]]:
    """(axis low, axis high, ticks): the data range widened to whole steps."""
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = abs(lo) * 0.1 or 1.0  # a flat series: centre it
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, count)
    start, stop = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    ticks = [start + k * step for k in range(int(round((stop - start) / step)) + 1)]
    return start, stop, ticks


def tick_label(value: float, step: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-4:
        return f"{value:.1e}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if str(step).rstrip("0").endswith("25") else 0)
    return f"{value:.{min(decimals, 6)}f}"


def _spans_decades(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100


class _Axes:
    """Maps data to pixels for one chart; y may be log10."""

    def __init__(self, xs: list[float], ys: list[float], width: int, plot_height: int, log_y: bool,
                 ceiling: float | None = None):
        self.log_y = log_y
        self.x0, self.x1, self.xticks = self._x_range(xs)
        ty = [math.log10(v) for v in ys] if log_y else ys
        if log_y:
            self.y0, self.y1 = math.floor(min(ty)), math.ceil(max(ty))
            self.yticks = [float(k) for k in range(int(self.y0), int(self.y1) + 1)]
        else:
            self.y0, self.y1, self.yticks = linear_ticks(min(ty), max(ty))
            if ceiling is not None and max(ty) <= ceiling < self.y1:  # no 110 % on an accuracy axis
                self.y1, self.yticks = ceiling, [t for t in self.yticks if t <= ceiling]
        self.left, self.right, self.top, self.bottom = LEFT, width - RIGHT, TOP, TOP + plot_height

    @staticmethod
    def _x_range(xs: list[float]) -> tuple[float, float, list[float]]:
        distinct = sorted(set(xs))
        if len(distinct) <= 12:  # every epoch labelled, half an epoch of room on both sides
            return distinct[0] - 0.5, distinct[-1] + 0.5, distinct
        lo, hi, ticks = linear_ticks(distinct[0], distinct[-1], 6)
        return lo, hi, [t for t in ticks if t == int(t)]

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / ((self.x1 - self.x0) or 1) * (self.right - self.left)

    def py(self, y: float) -> float:
        y = math.log10(y) if self.log_y else y
        return self.bottom - (y - self.y0) / ((self.y1 - self.y0) or 1) * (self.bottom - self.top)

    def ylabel(self, tick: float) -> str:
        if self.log_y:
            return f"1e{int(tick)}"
        return tick_label(tick, round(self.yticks[1] - self.yticks[0], 12) if len(self.yticks) > 1 else 1.0)


def _frame(ax: _Axes, xlabel: str, ylabel: str) -> list[str]:
    out = [f'<rect x="{ax.left}" y="{ax.top}" width="{ax.right - ax.left}" height="{ax.bottom - ax.top}" '
           'fill="white" stroke="#888"/>']
    for t in ax.yticks:
        y = ax.py(10 ** t if ax.log_y else t)
        out.append(f'<line x1="{ax.left}" x2="{ax.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(f'<text x="{ax.left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{ax.ylabel(t)}</text>')
    for t in ax.xticks:
        x = ax.px(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{ax.bottom}" y2="{ax.bottom + 4}" stroke="#888"/>')
        out.append(f'<text x="{x:.1f}" y="{ax.bottom + 16}" text-anchor="middle" font-size="11">{t:g}</text>')
    middle = (ax.top + ax.bottom) / 2
    out.append(f'<text x="{(ax.left + ax.right) / 2}" y="{ax.bottom + 34}" text-anchor="middle" '
               f'font-size="12">{escape(xlabel)}</text>')
    out.append(f'<text x="14" y="{middle}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {middle})">{escape(ylabel)}</text>')
    return out


def _legend(labels: list[str], colors: list[str], width: int, top: float) -> tuple[list[str], int]:
    """Legend entries wrapped into rows below the x label; returns (elements, rows)."""
    out, x, row = [], float(LEFT), 0
    for label, color in zip(labels, colors):
        item = 28 + 7 * len(label)  # swatch plus roughly 7 px per character at 12 px
        if x + item > width - RIGHT and x > LEFT:
            x, row = float(LEFT), row + 1
        y = top + 18 * row
        out.append(f'<line x1="{x}" x2="{x + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="2.5"/>')
        out.append(f'<text x="{x + 23}" y="{y}" font-size="12">{escape(label)}</text>')
        x += item + 12
    return out, row + 1 if labels else 0


def line_chart(series: list[tuple[str, list[float], list[float]]], *, title: str, xlabel: str = "epoch",
               ylabel: str = "", width: int = 440, height: int = 300, log_y: bool | None = None,
               ceiling: float | None = None) -> str:
    """SVG text of `series` [(label, xs, ys)]; None values are skipped. log_y None: automatic;
    `ceiling` caps the y axis where the values cannot exceed it (accuracy: 100)."""
    series = [(label, [x for x, y in zip(xs, ys) if y is not None], [y for y in ys if y is not None])
              for label, xs, ys in series]
    series = [s for s in series if s[2]]
    plot_height = height - TOP - BOTTOM
    colors = [COLORS[i % len(COLORS)] for i in range(len(series))]
    legend, rows = _legend([s[0] for s in series], colors, width, height + 4) if len(series) > 1 else ([], 0)
    total = height + 18 * rows + (6 if rows else 0)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" viewBox="0 0 {width} {total}" '
            f'{FONT}><rect width="100%" height="100%" fill="white"/>'
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">'
            f"{escape(title)}</text>")
    if not series:
        return head + (f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13" fill="#666">'
                       'no data</text></svg>')
    values = [y for s in series for y in s[2]]
    ax = _Axes([x for s in series for x in s[1]], values, width, plot_height,
               _spans_decades(values) if log_y is None else log_y and min(values) > 0, ceiling)
    body = _frame(ax, xlabel, ylabel)
    for (label, xs, ys), color in zip(series, colors):
        points = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in zip(xs, ys))
        body.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        if len(xs) <= 40:  # markers while few points; hundreds would merge into a smear
            body += [f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="3" fill="{color}"/>' for x, y in zip(xs, ys)]
    return head + "".join(body + legend) + "</svg>"
