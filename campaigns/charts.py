"""Charts as inline SVG, drawn on the server: no chart library, no CDN, readable on a phone."""

from __future__ import annotations

from django.utils.html import escape, format_html_join
from django.utils.safestring import SafeString, mark_safe

BRAND, GREEN, GREY = "#5b3df5", "#12a150", "#98a2b3"


def bars_by_night(rows: list[dict], *, series: list[tuple[str, str, str]], height: int = 180) -> SafeString:
    """Grouped bars per night: ``series`` is [(key, label, colour)]."""
    if not rows:
        return mark_safe('<p class="muted">No nights yet.</p>')
    width = max(320, 28 * len(rows) * len(series))
    top = max(max((r.get(k) or 0) for k, _, _ in series) for r in rows) or 1
    plot_h = height - 40
    slot = width / len(rows)
    bar_w = max(min(slot / (len(series) + 1), 28), 3)
    parts = []
    for i, row in enumerate(rows):
        for j, (key, label, colour) in enumerate(series):
            value = row.get(key) or 0
            h = plot_h * value / top
            x = i * slot + (slot - bar_w * len(series)) / 2 + j * bar_w
            tip = escape(f"{row['local_date']}: {value} {label}")
            parts.append(
                f'<rect x="{x:.1f}" y="{10 + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{tip}</title></rect>'
            )
        if len(rows) <= 14 or i % max(len(rows) // 10, 1) == 0:
            tick = escape(row["local_date"].strftime("%d %b"))
            parts.append(f'<text x="{i * slot + slot / 2:.1f}" y="{height - 12}" class="tick">{tick}</text>')
    legend = format_html_join(
        "", '<span class="legend"><i style="background:{}"></i>{}</span>', ((c, label) for _, label, c in series)
    )
    svg = (
        f'<svg viewBox="0 0 {width:.0f} {height}" class="chart" role="img" aria-label="by night" '
        f'preserveAspectRatio="none">{"".join(parts)}</svg>'
    )
    return mark_safe(f'<div class="chart-wrap">{svg}<div class="legends">{legend}</div></div>')  # noqa: S308


def horizontal_bars(
    items: list[tuple[str, float, str]], *, unit: str = "", max_value: float | None = None
) -> SafeString:
    """One labelled bar per item: [(label, value, display)]."""
    top = max_value or max((v for _, v, _ in items), default=0) or 1
    rows = "".join(
        f'<div class="hbar"><span class="hbar-label">{escape(label)}</span><span class="hbar-track">'
        f'<span class="hbar-fill" style="width:{100 * value / top:.1f}%"></span></span>'
        f'<span class="hbar-value">{escape(display)}</span></div>'
        for label, value, display in items
    )
    return mark_safe(f'<div class="hbars">{rows}</div>')  # noqa: S308 - every value above is escaped
