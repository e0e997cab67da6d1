"""Charts as inline SVG, drawn here so the report needs no script library and no network.

Two kinds: a histogram of a per-dialogue count (turns, steps, tasks), and horizontal bars
for named categories (tools, feedback kinds, termination reasons). Both take one series
per group of dialogues (a mode) and draw the groups side by side in fixed colours; with
more than one group a histogram shows the share of each group's dialogues, so groups of
different sizes compare directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape

__all__ = ["SERIES_COLORS", "category_bars", "histogram", "series_color"]

SERIES_COLORS = {"user-oriented": "#2563eb", "task-oriented": "#d97706", "all": "#0f766e"}
_FALLBACK = ("#7c3aed", "#db2777", "#059669", "#4b5563")

_W = 520
_FONT = 11


def series_color(name: str, index: int = 0) -> str:
    """The colour of a series: fixed for the modes, from a small palette otherwise."""
    return SERIES_COLORS.get(name) or _FALLBACK[index % len(_FALLBACK)]


def _nice_ticks(top: float, count: int = 4) -> list[float]:
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(ticks[-1] + step)
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _svg(height: float, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {height:.0f}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" font-size="{_FONT}">'
        + "".join(body)
        + "</svg>"
    )


def _legend(names: list[str], y: float) -> list[str]:
    if len(names) < 2:
        return []
    out = []
    x = _W - 8.0
    for index, name in reversed(list(enumerate(names))):
        text_w = len(name) * 6.2
        x -= text_w
        out.append(f'<text x="{x:.1f}" y="{y + 9:.1f}" class="legend">{escape(name)}</text>')
        x -= 14
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" rx="2" fill="{series_color(name, index)}"/>')
        x -= 14
    return out


def _empty(label: str) -> str:
    return _svg(60, label, ['<text x="260" y="34" text-anchor="middle" class="muted">no data</text>'])


def histogram(series: Mapping[str, Mapping[int, int]], *, label: str, unit: str) -> str:
    """Grouped vertical bars of how many dialogues have each value (binned when the range is wide)."""
    names = list(series)
    values = sorted({v for counts in series.values() for v, n in counts.items() if n})
    if not values:
        return _empty(label)
    lo, hi = values[0], values[-1]
    width = 1 if hi - lo < 30 else math.ceil((hi - lo + 1) / 24)
    start = lo - lo % width if width > 1 else lo
    bins = [(b, b + width - 1) for b in range(start, hi + 1, width)]
    totals = {name: sum(counts.values()) for name, counts in series.items()}
    share = len(names) > 1

    def amount(name: str, b: tuple[int, int]) -> tuple[int, float]:
        n = sum(c for v, c in series[name].items() if b[0] <= v <= b[1])
        return n, (100.0 * n / totals[name] if totals[name] else 0.0) if share else float(n)

    cells = {(name, b): amount(name, b) for name in names for b in bins}
    top = max(v for _, v in cells.values())
    ticks = _nice_ticks(top)
    height = 250.0
    left, right, top_pad, bottom = 40.0, 10.0, 26.0, 44.0
    plot_w, plot_h = _W - left - right, height - top_pad - bottom

    def y_of(v: float) -> float:
        return top_pad + plot_h * (1 - v / ticks[-1])

    body = _legend(names, 4)
    for t in ticks:
        y = y_of(t)
        body.append(f'<line x1="{left}" x2="{_W - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        tick = _fmt(t) + ("%" if share else "")
        body.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end" class="tick">{tick}</text>')
    slot = plot_w / len(bins)
    bar_w = slot * 0.8 / len(names)
    every = max(1, math.ceil(len(bins) / 14))
    for i, b in enumerate(bins):
        x0 = left + i * slot + slot * 0.1
        for j, name in enumerate(names):
            n, v = cells[(name, b)]
            if not n:
                continue
            y = y_of(v)
            what = f"{b[0]}" if b[0] == b[1] else f"{b[0]}–{b[1]}"
            tip = f"{name}: {n} dialogue{'s' if n != 1 else ''}"
            if share:
                tip += f" ({v:.1f}%)"
            tip += f" with {what} {unit}"
            body.append(
                f'<rect class="bar" x="{x0 + j * bar_w:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{top_pad + plot_h - y:.1f}" fill="{series_color(name, j)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        if i % every == 0:
            text = f"{b[0]}" if b[0] == b[1] else f"{b[0]}–{b[1]}"
            body.append(
                f'<text x="{left + (i + 0.5) * slot:.1f}" y="{top_pad + plot_h + 14:.1f}" '
                f'text-anchor="middle" class="tick">{text}</text>'
            )
    body.append(
        f'<line x1="{left}" x2="{_W - right}" y1="{top_pad + plot_h:.1f}" y2="{top_pad + plot_h:.1f}" class="axis"/>'
    )
    axis = f"{unit} per dialogue" + (" (share of each group's dialogues)" if share else " (dialogues)")
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" class="muted">{axis}</text>')
    return _svg(height, label, body)


def category_bars(series: Mapping[str, Mapping[str, int]], *, label: str, unit: str, limit: int = 14) -> str:
    """Horizontal grouped bars per category, largest first; past ``limit`` a line sums up the rest."""
    names = list(series)
    totals: dict[str, int] = {}
    for counts in series.values():
        for key, n in counts.items():
            totals[key] = totals.get(key, 0) + n
    categories = sorted((k for k, n in totals.items() if n), key=lambda k: (-totals[k], k))
    if not categories:
        return _empty(label)
    rest = categories[limit:]
    rows: list[tuple[str, dict[str, int]]] = [
        (c, {name: series[name].get(c, 0) for name in names}) for c in categories[:limit]
    ]
    bar_h, gap, pad = 12.0, 2.0, 7.0
    row_h = len(names) * (bar_h + gap) - gap + 2 * pad
    top_pad = 22.0 if len(names) > 1 else 6.0
    note_h = 18.0 if rest else 0.0
    height = top_pad + len(rows) * row_h + note_h + 6
    label_w = 150.0
    x0, x1 = label_w + 6, _W - 46.0
    top = max(max(values.values()) for _, values in rows) or 1
    body = _legend(names, 4)
    for i, (category, values) in enumerate(rows):
        y_row = top_pad + i * row_h
        if i % 2 == 0:
            body.append(f'<rect x="0" y="{y_row:.1f}" width="{_W}" height="{row_h:.1f}" class="stripe"/>')
        shown_name = category if len(category) <= 24 else category[:23] + "…"
        body.append(
            f'<text x="{label_w}" y="{y_row + row_h / 2 + 4:.1f}" text-anchor="end" class="cat">'
            f"<title>{escape(category)}</title>{escape(shown_name)}</text>"
        )
        for j, name in enumerate(names):
            n = values[name]
            y = y_row + pad + j * (bar_h + gap)
            w = (x1 - x0) * n / top
            tip = f"{name}: {n} {unit} ({category})"
            if n:
                body.append(
                    f'<rect class="bar" x="{x0:.1f}" y="{y:.1f}" width="{max(w, 1.5):.1f}" height="{bar_h}" '
                    f'rx="2" fill="{series_color(name, j)}"><title>{escape(tip)}</title></rect>'
                )
            body.append(f'<text x="{x0 + w + 4:.1f}" y="{y + bar_h - 2:.1f}" class="val">{n}</text>')
    y_end = top_pad + len(rows) * row_h
    body.append(f'<line x1="{x0}" x2="{x0}" y1="{top_pad}" y2="{y_end:.1f}" class="axis"/>')
    if rest:
        # Summed into one bar the rest would dwarf the others; say it in words instead.
        sums = " / ".join(f"{sum(series[name].get(c, 0) for c in rest)}" for name in names)
        text = f"and {len(rest)} more: {sums} {unit}" + (f" ({' / '.join(names)})" if len(names) > 1 else "")
        body.append(f'<text x="{x0}" y="{y_end + 14:.1f}" class="muted">{escape(text)}</text>')
    return _svg(height, label, body)
