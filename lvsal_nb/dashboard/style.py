"""The shared colour language as Bokeh settings (see lvsal_nb/palette.py): Viridis for saliency,
red / orange / green marks with a white halo, transparent figure backgrounds (light and dark themes)."""

from __future__ import annotations

from bokeh.plotting import figure

MARK_COLORS = {"hallucinated": "#D62728", "unsure": "#FF7F0E", "correct": "#2CA02C"}
MARK_DASH = {"hallucinated": "solid", "unsure": "dashed", "correct": "solid"}
LINE_COLORS = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def new_figure(**kw):
    """A figure with transparent backgrounds (follows the page's theme), no toolbar logo."""
    f = figure(background_fill_color=None, border_fill_color=None, **kw)
    f.toolbar.logo = None
    return f
