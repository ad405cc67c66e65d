"""Bokeh curves of saliency over steps: the viewer's (with τ, rejected candidates, marks and the
cursor) and the tuner's A-vs-B comparison. Sources hold columns from columns.py."""

from __future__ import annotations

from bokeh.models import ColumnDataSource, HoverTool, TapTool
from bokeh.plotting import figure


def _curve_figure(width: int, height: int, title: str) -> figure:
    fig = figure(width=width, height=height, tools="", min_border=4, title=title, x_axis_label="step",
                 y_axis_label="saliency")
    fig.title.text_font_size = "11px"
    fig.toolbar_location = None
    return fig


def saliency_curve(src: dict[str, ColumnDataSource], width: int = 780) -> figure:
    """The chosen token's saliency per step (points coloured by mark), τ dashed, rejected SGRS
    candidates as grey crosses, the cursor as a vertical line. Tap a point to move the cursor."""
    fig = _curve_figure(width, 220, "Saliency per step")
    fig.vspan(x="x", source=src["curve_cursor"], line_color="black", line_width=1.5, line_alpha=0.7)
    fig.line("step", "saliency", source=src["curve"], line_color="#4575b4", legend_label="chosen token")
    fig.line("step", "tau", source=src["curve"], line_color="#d62728", line_dash="dashed",
             legend_label="τ (SGRS)")
    fig.scatter("step", "saliency", source=src["rejected"], marker="x", size=7, color="#8a8a8a",
                legend_label="rejected")
    pts = fig.scatter("step", "saliency", source=src["curve"], size="size", color="color")
    pts.nonselection_glyph = pts.selection_glyph = None
    fig.legend.label_text_font_size = "10px"
    fig.add_layout(fig.legend[0], "right")  # outside the frame: never over the points
    tips = [("step", "@step"), ("token", "@token"), ("saliency", "@value"), ("mark", "@mark")]
    fig.add_tools(TapTool(renderers=[pts]), HoverTool(renderers=[pts], tooltips=tips))
    return fig


def compare_curve(src_a: ColumnDataSource, src_b: ColumnDataSource, width: int = 780) -> figure:
    """Saliency per step of two runs (the tuner's A and B); sources with columns step, saliency."""
    fig = _curve_figure(width, 200, "Saliency per step: A vs B")
    for src, color, name in ((src_a, "#4575b4", "A"), (src_b, "#f46d43", "B")):
        fig.line("step", "saliency", source=src, line_color=color, legend_label=name)
        fig.scatter("step", "saliency", source=src, color=color, size=5, legend_label=name)
    fig.add_layout(fig.legend[0], "right")
    return fig
