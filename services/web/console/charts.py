"""Charts drawn on the server as SVG: one pure function from counts to markup, no script.

The SVG carries a <title> and <desc> (and the page a table of the same numbers), so it is readable
without sight of it; bars have their own <title> for a hover tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 40
SUBSCRIBED, UNSUBSCRIBED = "#1a56c4", "#b3261e"


@dataclass(frozen=True)
class DayCount:
    day: str  # YYYY-MM-DD
    subscriptions: int
    unsubscriptions: int


def _ticks(top: int) -> list[int]:
    """Up to five round values from 0 to at least `top`."""
    if top <= 4:
        return list(range(0, max(top, 1) + 1))
    step = 1
    while top / step > 4:
        for factor in (2, 2.5, 2):
            step = int(step * factor)
            if top / step <= 4:
                break
    return list(range(0, top + step, step))


def daily_chart(days: Sequence[DayCount], title: str) -> str:
    """Paired bars per day: subscriptions (blue) and unsubscriptions (red), with a y axis and dates."""
    ticks = _ticks(max([0, *(max(d.subscriptions, d.unsubscriptions) for d in days)]))
    top = ticks[-1] or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(1.0, slot * 0.4)
    total_in = sum(d.subscriptions for d in days)
    total_out = sum(d.unsubscriptions for d in days)
    span = f"{days[0].day} to {days[-1].day}" if days else "no days"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" class="chart">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{total_in} subscriptions and {total_out} unsubscriptions from {escape(span)}.</desc>',
    ]
    for tick in ticks:
        y = TOP + plot_h - plot_h * tick / top
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dde3"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#3d4650">{tick}</text>'
        )
    label_every = max(1, round(len(days) / 8))
    for i, day in enumerate(days):
        day = DayCount(escape(day.day), day.subscriptions, day.unsubscriptions)
        x = LEFT + i * slot + (slot - 2 * bar) / 2
        for offset, value, color, name in (
            (0.0, day.subscriptions, SUBSCRIBED, "subscriptions"),
            (bar, day.unsubscriptions, UNSUBSCRIBED, "unsubscriptions"),
        ):
            h = plot_h * value / top
            out.append(
                f'<rect x="{x + offset:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{color}" data-day="{day.day}" data-kind="{name}" data-value="{value}">'
                f"<title>{day.day}: {value} {name}</title></rect>"
            )
        last = i == len(days) - 1
        if last or (i % label_every == 0 and len(days) - 1 - i >= label_every):
            out.append(
                f'<text x="{LEFT + i * slot + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="11" fill="#3d4650">{escape(day.day[5:])}</text>'
            )
    legend_y = HEIGHT - 8
    out.append(f'<rect x="{LEFT}" y="{legend_y - 9}" width="10" height="10" fill="{SUBSCRIBED}"/>')
    out.append(f'<text x="{LEFT + 14}" y="{legend_y}" font-size="12" fill="#1b1f24">subscriptions</text>')
    out.append(f'<rect x="{LEFT + 120}" y="{legend_y - 9}" width="10" height="10" fill="{UNSUBSCRIBED}"/>')
    out.append(f'<text x="{LEFT + 134}" y="{legend_y}" font-size="12" fill="#1b1f24">unsubscriptions</text>')
    out.append("</svg>")
    return "".join(out)


def breakdown_chart(rows: Sequence[tuple[str, int, int]], title: str) -> str:
    """Horizontal bars per value (label, subscriptions, unsubscriptions), largest first as given."""
    width, bar_h, gap, label_w = 400, 14, 10, 130
    height = TOP + len(rows) * (2 * bar_h + gap) + 10
    top = max([1, *(max(s, u) for _, s, u in rows)])
    plot_w = width - label_w - 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, subs, unsubs) in enumerate(rows):
        y = TOP + i * (2 * bar_h + gap)
        out.append(
            f'<text x="{label_w - 8}" y="{y + bar_h + 4}" text-anchor="end" font-size="12" fill="#1b1f24">'
            f"{escape(label[:20])}</text>"
        )
        for j, (value, color) in enumerate(((subs, SUBSCRIBED), (unsubs, UNSUBSCRIBED))):
            w = plot_w * value / top
            out.append(f'<rect x="{label_w}" y="{y + j * bar_h}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}"/>')
            text_y = y + j * bar_h + bar_h - 3
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{text_y}" font-size="11" fill="#3d4650">{value}</text>')
    out.append("</svg>")
    return "".join(out)
