"""Bokeh curves of saliency over steps: the viewer's (with τ, rejected candidates, marks and the
cursor) and the tuner's A-vs-B comparison. Sources hold columns from columns.py."""

from __future__ import annotations

import math
from typing import Any

from bokeh.models import ColumnDataSource, HoverTool, Range1d, TapTool
from bokeh.plotting import figure

from .theme import TEXT, themed


def _curve_figure(width: int, height: int, title: str, tools: str = "") -> figure:
    # explicit ranges: a DataRange1d measured in the browser kept the first run's extent after the
    # data changed (the Tuner's B run was cut to A's range); fit_ranges sets them from the data
    fig = figure(
        width=width,
        height=height,
        tools=tools,
        min_border=4,
        title=title,
        x_axis_label="step",
        y_axis_label="saliency",
        x_range=Range1d(0, 1),
        y_range=Range1d(0, 1),
        sizing_mode="stretch_width",
    )
    themed(fig)
    fig.title.text_font_size = "11px"
    if not tools:
        fig.toolbar_location = None
    return fig


def fit_ranges(fig: figure, steps, values) -> None:
    """Set the x range to [-0.5, last step + 0.5] and y to [0, max value * 1.05] (finite values;
    [0, 1] without any), so every point of every series shown is inside the frame."""
    steps = [float(x) for x in steps]
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    x1 = max(steps) + 0.5 if steps else 1.0
    y1 = max(vals) * 1.05 if vals and max(vals) > 0 else 1.0
    if (fig.x_range.start, fig.x_range.end) != (-0.5, x1):
        fig.x_range.start, fig.x_range.end = -0.5, x1
    if (fig.y_range.start, fig.y_range.end) != (0.0, y1):
        fig.y_range.start, fig.y_range.end = 0.0, y1


def saliency_curve(src: dict[str, ColumnDataSource], width: int = 780) -> figure:
    """The chosen token's saliency per step (points coloured by mark), τ dashed, rejected SGRS
    candidates as grey crosses, the cursor as a vertical line. Tap a point to move the cursor."""
    fig = _curve_figure(width, 220, "Saliency per step")
    # on the overlay layer: a step change repaints the line alone, not every point
    fig.vspan(x="x", source=src["curve_cursor"], line_color=TEXT, line_width=2, level="overlay")
    fig.line("step", "saliency", source=src["curve"], line_color="#4575b4", legend_label="chosen token")
    fig.line(
        "step",
        "tau",
        source=src["curve"],
        line_color="#d62728",
        line_dash="dashed",
        legend_label="τ (SGRS)",
        name="tau",
    )
    fig.scatter(
        "step",
        "saliency",
        source=src["rejected"],
        marker="x",
        size=7,
        color="#8a8a8a",
        legend_label="rejected",
        name="rejected",
    )
    pts = fig.scatter("step", "saliency", source=src["curve"], size="size", color="color")
    pts.nonselection_glyph = pts.selection_glyph = None
    fig.legend.label_text_font_size = "10px"
    fig.add_layout(fig.legend[0], "right")  # outside the frame: never over the points
    tips = [("step", "@step"), ("token", "@token"), ("saliency", "@value"), ("mark", "@mark")]
    fig.add_tools(TapTool(renderers=[pts]), HoverTool(renderers=[pts], tooltips=tips))
    themed(fig)  # again: the legend exists now
    show_series(fig, tau=False, rejected=False)  # until a trace has them (a greedy one never does)
    return fig


def show_series(fig: figure, *, tau: bool, rejected: bool) -> None:
    """Show the curve's τ line and rejected crosses, with their legend entries, only when the trace
    has them (SGRS); a greedy trace's legend lists the chosen token alone. Sets changed values only."""
    want = {"tau": tau, "rejected": rejected}
    legend: Any = fig.legend[0]  # (Bokeh's stubs also allow (label, renderers) tuples as items)
    for item in legend.items:
        names = [r.name for r in item.renderers if r.name in want]
        if not names:
            continue
        on = want[names[0]]
        for r in item.renderers:
            if r.visible != on:
                r.visible = on
        if item.visible != on:
            item.visible = on


def compare_curve(src_a: ColumnDataSource, src_b: ColumnDataSource, width: int = 780) -> figure:
    """Saliency per step of two runs (the tuner's A and B); sources with columns step, saliency."""
    fig = _curve_figure(
        width,
        200,
        "Saliency per step: A vs B (drag to pan, wheel to zoom, ↻ to reset)",
        tools="xpan,xwheel_zoom,reset",
    )
    for src, color, name in ((src_a, "#4575b4", "A"), (src_b, "#f46d43", "B")):
        fig.line("step", "saliency", source=src, line_color=color, legend_label=name)
        fig.scatter("step", "saliency", source=src, color=color, size=5, legend_label=name)
    fig.add_layout(fig.legend[0], "right")
    themed(fig)
    return fig
