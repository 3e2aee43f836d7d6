"""Inline SVG charts: a page that opens offline, from a file, with no script and no CDN.

Each function takes plain Python values and returns one `<svg>` element as text. Labels
are escaped; sizes are in CSS pixels.
"""

from __future__ import annotations

from html import escape

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777")
MOVEMENT_COLOURS = {
    "new": "#16a34a",
    "expansion": "#2563eb",
    "reactivation": "#0891b2",
    "contraction": "#f59e0b",
    "churned": "#dc2626",
}


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:,.0f}k"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def bar_chart(
    rows: list[tuple[str, float]], prefix: str = "", width: int = 520, colour: str = PALETTE[0]
) -> str:
    """Horizontal bars, one per (label, value); negative values extend left of the axis."""
    rows = [(label, float(value)) for label, value in rows if value is not None]
    if not rows:
        return '<p class="empty">no rows</p>'
    bar_h, gap, label_w, value_w = 18, 6, 150, 70
    height = len(rows) * (bar_h + gap) + gap
    low = min(0.0, *(v for _, v in rows))
    high = max(0.0, *(v for _, v in rows))
    span = (high - low) or 1.0
    plot_w = width - label_w - value_w
    zero_x = label_w + plot_w * (-low / span)
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for i, (label, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = plot_w * abs(value) / span
        x = zero_x if value >= 0 else zero_x - w
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end">{escape(str(label))}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{escape(str(label))}: {escape(prefix)}{_fmt(value)}</title></rect>"
            f'<text x="{width - value_w + 6}" y="{y + bar_h - 5}">{escape(prefix)}{_fmt(value)}</text>'
        )
    parts.append(
        f'<line x1="{zero_x:.1f}" x2="{zero_x:.1f}" y1="0" y2="{height}" stroke="#9ca3af"/></svg>'
    )
    return "".join(parts)


def heatmap(
    row_labels: list[str],
    column_labels: list[str],
    values: dict[tuple[str, str], float],
    width_per_cell: int = 44,
) -> str:
    """A grid of cells shaded by value in [0, 1] (e.g. retention), the value printed in each."""
    if not row_labels or not column_labels:
        return '<p class="empty">no rows</p>'
    label_w, cell_h, head_h = 90, 24, 22
    width = label_w + width_per_cell * len(column_labels) + 4
    height = head_h + cell_h * len(row_labels) + 4
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for j, column in enumerate(column_labels):
        x = label_w + j * width_per_cell + width_per_cell / 2
        parts.append(f'<text x="{x:.0f}" y="15" text-anchor="middle">{escape(column)}</text>')
    for i, row in enumerate(row_labels):
        y = head_h + i * cell_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(row)}</text>')
        for j, column in enumerate(column_labels):
            value = values.get((row, column))
            if value is None:
                continue
            x = label_w + j * width_per_cell
            shade = max(0.0, min(1.0, value))
            fill = f"rgba(37, 99, 235, {0.08 + 0.92 * shade:.2f})"
            ink = "#fff" if shade > 0.55 else "#111827"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{width_per_cell - 2}" height="{cell_h - 2}" fill="{fill}">'
                f"<title>{escape(row)}, month {escape(column)}: {value:.0%}</title></rect>"
                f'<text x="{x + width_per_cell / 2 - 1:.0f}" y="{y + 16}" text-anchor="middle" '
                f'fill="{ink}">{value:.0%}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def stacked_columns(
    periods: list[str], series: dict[str, dict[str, float]], prefix: str = "", width: int = 520
) -> str:
    """Columns per period, positive series stacked up and negative ones down from zero."""
    if not periods:
        return '<p class="empty">no rows</p>'
    height, top, bottom, left = 240, 12, 40, 60
    ups = [sum(max(0.0, s.get(p, 0.0)) for s in series.values()) for p in periods]
    downs = [sum(min(0.0, s.get(p, 0.0)) for s in series.values()) for p in periods]
    high, low = max(ups + [0.0]), min(downs + [0.0])
    span = (high - low) or 1.0
    plot_h = height - top - bottom
    zero_y = top + plot_h * high / span
    col_w = (width - left - 10) / len(periods)
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height + 24}" '
        f'viewBox="0 0 {width} {height + 24}">',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end">{escape(prefix)}{_fmt(high)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{escape(prefix)}{_fmt(low)}</text>',
    ]
    for j, period in enumerate(periods):
        x = left + j * col_w + 2
        up, down = zero_y, zero_y
        for name, values in series.items():
            value = values.get(period, 0.0)
            if not value:
                continue
            h = plot_h * abs(value) / span
            if value > 0:
                up -= h
                y = up
            else:
                y = down
                down += h
            colour = MOVEMENT_COLOURS.get(name, PALETTE[hash(name) % len(PALETTE)])
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{col_w - 4:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{colour}"><title>{escape(period)} {escape(name)}: {escape(prefix)}{_fmt(value)}'
                "</title></rect>"
            )
        parts.append(
            f'<text x="{x + col_w / 2 - 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{escape(period[2:].replace('-', '/'))}</text>"
        )
    parts.append(
        f'<line x1="{left}" x2="{width}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" stroke="#9ca3af"/>'
    )
    legend_x = left
    for name in series:
        colour = MOVEMENT_COLOURS.get(name, PALETTE[hash(name) % len(PALETTE)])
        parts.append(
            f'<rect x="{legend_x}" y="{height + 6}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{height + 15}">{escape(name)}</text>'
        )
        legend_x += 16 + 8 * len(name) + 18
    parts.append("</svg>")
    return "".join(parts)
