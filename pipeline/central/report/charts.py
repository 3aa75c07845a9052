"""Inline SVG charts drawn by hand: the report must open offline with no script and no CDN.

Each function returns an SVG string (already escaped), or "" when there is nothing to draw. Sizes
are in viewBox units so the charts scale with the page; colours are the report's palette.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from pipeline.common.french import integer

INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#d9e2ec"
BLUE = "#2b5a9e"
LIGHT_BLUE = "#9fb3d1"
AMBER = "#d69e2e"
AMBER_BG = "#fdf3d7"


def _num(x: float) -> str:
    return integer(x) if abs(x) >= 100 or float(x).is_integer() else f"{x:.2f}".replace(".", ",")


def funnel_svg(steps: Sequence[tuple[str, int]], denominator: int | None) -> str:
    """Horizontal bars: links per pass, then the cumulative share of the denominator."""
    if not steps:
        return ""
    width, row_h, left, right = 640, 34, 150, 150
    height = row_h * len(steps) + 30
    top = max([v for _, v in steps] + [1])
    scale = (width - left - right) / top
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Entonnoir d\'appariement par passe" xmlns="http://www.w3.org/2000/svg">'
    ]
    cumulative = 0
    for i, (label, value) in enumerate(steps):
        y = 10 + i * row_h
        cumulative += value
        w = max(value * scale, 1.0)
        share = f" · cumul {cumulative / denominator:.1%}".replace(".", ",") if denominator else ""
        parts.append(
            f'<text x="{left - 8}" y="{y + 20}" text-anchor="end" fill="{INK}" '
            f'font-size="13">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 5}" width="{w:.1f}" height="{row_h - 12}" rx="3" '
            f'fill="{BLUE}"><title>{escape(label)} : {_num(value)} liens</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 20}" fill="{MUTED}" font-size="12">'
            f"{_num(value)}{escape(share)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _nice_ticks(lo: float, hi: float, target: int = 7) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 x 10^k) covering [lo, hi]."""
    import math

    span = (hi - lo) or 1.0
    raw = span / max(target - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks, v = [], first
    while v <= hi + 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def histogram_svg(
    bins: Sequence[float],
    counts: Sequence[int],
    *,
    review: float | None = None,
    link: float | None = None,
) -> str:
    """Match-weight histogram (log scale on counts) with the clerical band shaded."""
    if not counts or len(bins) != len(counts) + 1:
        return ""
    width, height, left, bottom, top_pad = 640, 270, 56, 40, 26
    plot_w, plot_h = width - left - 16, height - bottom - top_pad
    lo, hi = float(bins[0]), float(bins[-1])
    span = (hi - lo) or 1.0

    def xpos(v: float) -> float:
        return left + (min(max(v, lo), hi) - lo) / span * plot_w

    import math

    peak = max(counts) or 1
    log_peak = math.log10(peak + 1)

    def bar_h(c: int) -> float:
        return (math.log10(c + 1) / log_peak) * plot_h if log_peak else 0.0

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Histogramme des poids d\'appariement" xmlns="http://www.w3.org/2000/svg">'
    ]
    if review is not None and link is not None and link > review:
        x0, x1 = xpos(review), xpos(link)
        parts.append(
            f'<rect x="{x0:.1f}" y="{top_pad}" width="{x1 - x0:.1f}" height="{plot_h}" '
            f'fill="{AMBER_BG}"><title>Zone de revue manuelle</title></rect>'
            f'<text x="{(x0 + x1) / 2:.1f}" y="{top_pad - 4}" text-anchor="middle" '
            f'fill="{AMBER}" font-size="11">revue manuelle</text>'
        )
    tick = 1
    while tick <= peak:  # gridlines at 1, 10, 100... (log scale on counts + 1)
        y = top_pad + plot_h - bar_h(tick)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="10">{_num(tick)}</text>'
        )
        tick *= 10
    for i, c in enumerate(counts):
        x0, x1 = xpos(bins[i]), xpos(bins[i + 1])
        h = bar_h(int(c))
        mid = (bins[i] + bins[i + 1]) / 2
        fill = BLUE if link is not None and mid >= link else LIGHT_BLUE
        if review is not None and link is not None and review <= mid < link:
            fill = AMBER
        parts.append(
            f'<rect x="{x0 + 0.5:.1f}" y="{top_pad + plot_h - h:.1f}" '
            f'width="{max(x1 - x0 - 1, 0.5):.1f}" height="{h:.1f}" fill="{fill}">'
            f"<title>[{_num(bins[i])} ; {_num(bins[i + 1])}[ : {_num(int(c))} paires</title></rect>"
        )
    for v in _nice_ticks(lo, hi):
        x = xpos(v)
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="10">{_num(v)}</text>'
        )
    for v, name in ((review, "seuil revue"), (link, "seuil lien")):
        if v is not None:
            x = xpos(v)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top_pad}" y2="{top_pad + plot_h}" '
                f'stroke="{INK}" stroke-dasharray="4 3"><title>{name} : {_num(v)}</title></line>'
            )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="{INK}" '
        f'font-size="11">poids d\'appariement (log2 du rapport de vraisemblance)</text>'
        f'<text x="12" y="{top_pad + plot_h / 2:.1f}" fill="{INK}" font-size="11" '
        f'transform="rotate(-90 12 {top_pad + plot_h / 2:.1f})" text-anchor="middle">'
        f"paires (échelle log)</text></svg>"
    )
    return "".join(parts)


def bar_share_svg(passed: int, failed_warning: int, failed_critical: int, skipped: int) -> str:
    """A thin stacked bar summarising one suite (passed / warnings / critical / not run)."""
    total = passed + failed_warning + failed_critical + skipped
    if total <= 0:
        return ""
    width, height = 160, 12
    parts = [f'<svg class="minibar" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" aria-hidden="true">']
    x = 0.0
    for n, colour in ((passed, "#3f8f5a"), (failed_warning, AMBER), (failed_critical, "#b83232"),
                      (skipped, GRID)):
        w = n / total * width
        if w > 0:
            parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" '
                         f'fill="{colour}"/>')
        x += w
    parts.append("</svg>")
    return "".join(parts)


GREEN = "#3f8f5a"
RED = "#b83232"


def _signed(x: float) -> str:
    return f"{x:+.2f}".replace(".", ",").replace("-", "−")


def waterfall_svg(
    prior: float,
    steps: Sequence[tuple[str, float]],
    total: float,
    *,
    link: float | None = None,
    review: float | None = None,
) -> str:
    """One link's match weight as a waterfall: the prior, then each comparison's weight added
    in turn (green raises, red lowers), then the final weight against the thresholds."""
    rows = [("a priori", prior), *steps]
    width, row_h, left, right, top_pad = 720, 22, 330, 20, 8
    height = row_h * (len(rows) + 1) + top_pad + 24
    ends, cum = [0.0, prior], prior
    for _, w in rows[1:]:
        cum += w
        ends.append(cum)
    ends += [total] + [v for v in (link, review) if v is not None]
    lo, hi = min(ends), max(ends)  # ends starts with 0: the axis always shows zero
    span = (hi - lo) or 1.0
    plot_w = width - left - right

    def xpos(v: float) -> float:
        return left + (v - lo) / span * plot_w

    parts = [
        f'<svg class="chart waterfall" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Décomposition du poids d\'appariement" xmlns="http://www.w3.org/2000/svg">'
    ]
    x0 = xpos(0.0)
    parts.append(f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{top_pad}" '
                 f'y2="{height - 24}" stroke="{GRID}"/>')
    start = 0.0
    for i, (label, w) in enumerate(rows):
        y = top_pad + i * row_h
        a, b = sorted((start, start + w))
        colour = BLUE if i == 0 else (GREEN if w >= 0 else RED)
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="{INK}" font-size="11">'
            f'{escape(label if len(label) <= 52 else label[:51] + "…")}</text>'
            f'<rect x="{xpos(a):.1f}" y="{y + 4}" width="{max(xpos(b) - xpos(a), 1):.1f}" '
            f'height="{row_h - 8}" fill="{colour}"><title>{escape(label)} : '
            f'{_signed(w)}</title></rect>'
        )
        start += w
    y = top_pad + len(rows) * row_h
    parts.append(
        f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="{INK}" font-size="11" '
        f'font-weight="bold">poids final</text>'
        f'<rect x="{min(xpos(0), xpos(total)):.1f}" y="{y + 4}" '
        f'width="{max(abs(xpos(total) - xpos(0)), 1):.1f}" height="{row_h - 8}" fill="{INK}">'
        f'<title>poids final : {_signed(total)}</title></rect>'
    )
    for v, name in ((review, "seuil revue"), (link, "seuil lien")):
        if v is not None:
            x = xpos(v)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top_pad}" y2="{height - 24}" '
                f'stroke="{AMBER}" stroke-dasharray="4 3"><title>{name} : {_num(v)}</title></line>'
            )
    for v in _nice_ticks(lo, hi, target=6):
        parts.append(
            f'<text x="{xpos(v):.1f}" y="{height - 8}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="10">{_num(v)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
