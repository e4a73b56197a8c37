"""Charts drawn on the server as SVG: no script, nothing to load, and readable without the picture.

Each chart is a <figure> holding an <svg role="img" aria-label=...> that scales to its box (viewBox, width 100%),
a legend, and the same figures as a table in a <details>. Every bar and point carries data-label, data-series and
data-value (what tests read back) and a <title> with its exact value (what a pointer shows). Colours come from the
stylesheet through the classes series-0, series-1, ...: the page's CSP allows no inline style.
"""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil, floor, log10

from flask_babel import gettext as _
from markupsafe import Markup, escape

#: The drawing's coordinate width; the browser scales it to the box (a 390 px phone shows it at about 0.9).
WIDTH = 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 10, 12, 26  # room for the value axis on the left and the labels below
_TICKS = 6  # at most this many labels under a time axis
_COLOURS = 6  # series-0 ... series-5 in the stylesheet; more series reuse them


@dataclass(frozen=True)
class Series:
    """A named row of values, one per label."""

    name: str
    values: Sequence[int | float]


def _number(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 (times a power of ten) at or above `value`: the top of a value axis (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** floor(log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _text_width(text: str) -> float:
    """Roughly how wide a label is at 13 px: a full-width character (kana, kanji) takes twice a Latin one."""
    return sum(13 if unicodedata.east_asian_width(char) in "WF" else 7.2 for char in text)


def _fit(text: str, width: float) -> str:
    """The text, cut with an ellipsis where it would pass `width` (the whole text stays in the <title>)."""
    if _text_width(text) <= width:
        return text
    while text and _text_width(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _attrs(**values) -> str:
    return "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in values.items())


def _figure(key: str, title: str, svg: str, labels: Sequence[str], series: Sequence[Series],
            label_heading: str, description: str, sparse: bool = False) -> Markup:
    """The figure around a drawing: caption, legend, and the figures as a table (with `sparse`, only the rows
    that are not all zero: a minute-by-minute table would be mostly zeros)."""
    legend = ""
    if len(series) > 1:
        items = "".join(f'<li><span class="swatch series-{n % _COLOURS}" aria-hidden="true"></span>{escape(s.name)}</li>'
                        for n, s in enumerate(series))
        legend = f'<ul class="chart-legend">{items}</ul>'
    head = "".join(f'<th scope="col">{escape(s.name)}</th>' for s in series)
    rows = "".join(
        f'<tr><th scope="row">{escape(label)}</th>'
        + "".join(f"<td>{_number(s.values[n])}</td>" for s in series) + "</tr>"
        for n, label in enumerate(labels) if not sparse or any(s.values[n] for s in series))
    summary = escape(_("The figures as a table"))
    table = (f'<details class="chart-figures"><summary>{summary}</summary>'
             f'<div class="table-scroll"><table class="figures"><caption>{escape(title)}</caption>'
             f'<thead><tr><th scope="col">{escape(label_heading)}</th>{head}</tr></thead>'
             f"<tbody>{rows}</tbody></table></div></details>")
    caption = f"<figcaption>{escape(title)}</figcaption>"
    aria = f"{title}. {description}" if description else title
    svg = svg.replace("<svg ", f'<svg{_attrs(role="img", aria_label=aria)} ', 1)
    return Markup(f'<figure class="chart"{_attrs(data_chart=key)}>{caption}{svg}{legend}{table}</figure>')


def _svg(height: float, body: str) -> str:
    return (f'<svg class="chart-drawing" viewBox="0 0 {WIDTH} {ceil(height)}" width="100%"'
            f' preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def _value_axis(top: float, height: float) -> str:
    """Grid lines and their values at 0, 1/2 and the top of a vertical value axis."""
    parts = []
    for fraction in (0, 0.5, 1) if top % 2 == 0 else (0, 1):  # no "0.5" on an axis of head counts
        y = _TOP + height * (1 - fraction)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_number(top * fraction)}</text>")
    return "".join(parts)


def _time_axis(ticks: Sequence[str], xs: Sequence[float], baseline: float) -> str:
    """Labels under a horizontal axis: the first, the last and a few evenly spaced between."""
    if not ticks:
        return ""
    count = len(ticks)
    step = max(1, ceil(count / _TICKS))
    shown = list(range(0, count, step))
    if shown[-1] != count - 1:
        if len(shown) > 1:
            shown.pop()  # off the grid, the last label (always shown) would crowd its neighbour
        shown.append(count - 1)
    parts = []
    for n in shown:
        anchor = "start" if n == 0 and count > 1 else "end" if n == count - 1 and count > 1 else "middle"
        parts.append(f'<text class="axis" x="{xs[n]:.1f}" y="{baseline + 16:.1f}" text-anchor="{anchor}">'
                     f"{escape(ticks[n])}</text>")
    return "".join(parts)


def _mark(tag: str, label: str, series: Series, n: int, index: int, geometry: str, named: bool = True) -> str:
    """A bar or a point that says what it shows: data attributes for tests, a <title> for people (naming the
    series when there are several)."""
    value = series.values[index]
    name = f"{series.name}, " if series.name and named else ""
    return (f'<{tag} class="mark series-{n % _COLOURS}"{_attrs(data_label=label, data_series=series.name)}'
            f' data-value="{_number(value)}" {geometry}><title>{escape(label)}: {escape(name)}{_number(value)}'
            f"</title></{tag}>")


def bar_chart(key: str, title: str, labels: Sequence[str], series: Sequence[Series], *,
              ticks: Sequence[str] | None = None, label_heading: str = "", description: str = "",
              height: int = 180) -> Markup:
    """Vertical bars, one group per label (e.g. per day), one bar per series in each group."""
    plot_height = height - _TOP - _BOTTOM
    top = nice_ceiling(max((v for s in series for v in s.values), default=0))
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    bar = max(0.5, slot * 0.8 / max(1, len(series)))
    parts = [_value_axis(top, plot_height)]
    for index, label in enumerate(labels):
        for n, one in enumerate(series):
            size = plot_height * one.values[index] / top
            x = _LEFT + slot * index + slot * 0.1 + bar * n
            parts.append(_mark("rect", label, one, n, index, f'x="{x:.2f}" y="{_TOP + plot_height - size:.2f}"'
                               f' width="{bar:.2f}" height="{size:.2f}"',
                               named=len(series) > 1))
    centres = [_LEFT + slot * (index + 0.5) for index in range(len(labels))]
    parts.append(_time_axis(ticks or labels, centres, _TOP + plot_height))
    return _figure(key, title, _svg(height, "".join(parts)), labels, series, label_heading, description)


def line_chart(key: str, title: str, labels: Sequence[str], series: Sequence[Series], *,
               ticks: Sequence[str] | None = None, area: bool = False, label_heading: str = "",
               description: str = "", height: int = 180, sparse_table: bool = False) -> Markup:
    """Lines over time (cumulative figures, rates), one per series; with `area`, the first is filled below."""
    plot_height = height - _TOP - _BOTTOM
    top = nice_ceiling(max((v for s in series for v in s.values), default=0))
    span = WIDTH - _LEFT - _RIGHT
    xs = ([_LEFT + span * index / (len(labels) - 1) for index in range(len(labels))] if len(labels) > 1
          else [_LEFT + span / 2] * len(labels))
    baseline = _TOP + plot_height
    radius = 2.5 if len(labels) <= 40 else 1.5
    parts = [_value_axis(top, plot_height)]
    for n, one in enumerate(series):
        points = [(x, baseline - plot_height * value / top) for x, value in zip(xs, one.values)]
        line = " ".join(f"{x:.2f},{y:.2f}" for x, y in points)
        if area and n == 0 and points:
            parts.append(f'<polygon class="area series-0" points="{xs[0]:.2f},{baseline:.2f} {line}'
                         f' {xs[-1]:.2f},{baseline:.2f}"/>')
        parts.append(f'<polyline class="line series-{n % _COLOURS}" points="{line}"/>')
        parts += [_mark("circle", labels[index], one, n, index, f'cx="{x:.2f}" cy="{y:.2f}" r="{radius}"',
                        named=len(series) > 1)
                  for index, (x, y) in enumerate(points)]
    parts.append(_time_axis(ticks or labels, xs, baseline))
    return _figure(key, title, _svg(height, "".join(parts)), labels, series, label_heading, description,
                   sparse=sparse_table)


def hbar_chart(key: str, title: str, labels: Sequence[str], series: Sequence[Series], *,
               label_heading: str = "", description: str = "") -> Markup:
    """Horizontal bars for categories or reasons: each label on its own line, its bars below, values at their end.

    The labels sit above the bars rather than beside them, so that long ones (session titles) still fit a phone.
    """
    value_room, label_line, bar_height, gap = 44, 17, 12, 10
    top = max((v for s in series for v in s.values), default=0) or 1
    span = WIDTH - 2 - value_room
    parts, y = [], 4.0
    for index, label in enumerate(labels):
        shown = _fit(label, WIDTH - 4)
        parts.append(f'<text class="label" x="2" y="{y + 13:.1f}">{escape(shown)}</text>')
        y += label_line + 2
        for n, one in enumerate(series):
            size = span * one.values[index] / top
            parts.append(_mark("rect", label, one, n, index, f'x="2" y="{y:.2f}" width="{size:.2f}"'
                               f' height="{bar_height}"', named=len(series) > 1))
            parts.append(f'<text class="value" x="{size + 6:.1f}" y="{y + bar_height - 2:.1f}">'
                         f"{_number(one.values[index])}</text>")
            y += bar_height + 2
        y += gap
    return _figure(key, title, _svg(max(y, 20), "".join(parts)), labels, series, label_heading, description)
