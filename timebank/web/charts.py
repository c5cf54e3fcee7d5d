"""The report's charts as SVG, drawn on the server by pygal: no script, and they print.

pygal writes its styles inside the SVG (a ``<style>`` element), which the pages' CSP
refuses; so a chart is its own response, ``/orgs/{org}/reports/charts/<name>.svg``, with
its own CSP that allows only inline style (security.py: ``CHART_CSP``), shown by an
``<img>`` whose text alternative names the table beside it (every chart is also a table).
"""

from collections.abc import Callable
from decimal import Decimal
from xml.etree import ElementTree

import pygal
from babel.dates import format_date
from pygal.style import Style

from timebank.reports.schemas import MonthlyReport
from timebank.reports.service import parse_month
from timebank.web.i18n import PageLocale

# govuk-frontend's colours (blue bars, dark text) and the system fonts the pages use.
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#0b0c0c",
    foreground_strong="#0b0c0c",
    foreground_subtle="#505a5f",
    colors=("#1d70b8",),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
    label_font_size=14,
    major_label_font_size=14,
    value_font_size=14,
    title_font_size=18,
)


def _chart(kind: type[pygal.graph.graph.Graph], language: PageLocale, labels: list[str]) -> pygal.graph.graph.Graph:
    chart = kind(
        js=[],  # pygal's default loads its tooltips script from a CDN
        style=_STYLE,
        show_legend=False,
        width=800,
        height=40 * len(labels) + 120 if kind is pygal.HorizontalBar else 360,
        print_values=False,
        show_minor_x_labels=True,
        x_label_rotation=0,
        truncate_label=-1,
        margin=16,
        no_data_text=language.gettext("No hours in this period"),
    )
    chart.x_labels = labels
    return chart


def _svg(chart: pygal.graph.graph.Graph) -> str:
    """The chart without the ``<script>`` pygal always writes (its tooltips' settings): no script at all."""
    tree = chart.render_tree()
    for parent in tree.iter():
        for child in [c for c in parent if c.tag in ("script", "{http://www.w3.org/2000/svg}script")]:
            parent.remove(child)
    return ElementTree.tostring(tree, encoding="unicode")


def _hours(minutes: int) -> float:
    return float(Decimal(minutes) / 60)


def trend_chart(report: MonthlyReport, language: PageLocale) -> str:
    """Hours exchanged in each of the 12 months ending with the period."""
    labels = [format_date(parse_month(m.month), format="MMM yy", locale=language.locale) for m in report.trend]
    chart = _chart(pygal.Bar, language, labels)
    chart.y_title = language.gettext("Hours exchanged")
    chart.add(language.gettext("Hours exchanged"), [_hours(m.minutes) for m in report.trend])
    return _svg(chart)


def category_chart(report: MonthlyReport, language: PageLocale) -> str:
    """Hours exchanged by category, the largest first."""
    rows = sorted(report.by_category, key=lambda c: -c.minutes)
    names = [c.category if c.category_id is not None else language.gettext("No category") for c in rows]
    chart = _chart(pygal.HorizontalBar, language, names)
    chart.add(language.gettext("Hours exchanged"), [_hours(c.minutes) for c in rows])
    return _svg(chart)


CHARTS: dict[str, Callable[[MonthlyReport, PageLocale], str]] = {
    "trend": trend_chart,
    "categories": category_chart,
}
