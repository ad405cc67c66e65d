"""Bokeh figures that follow JupyterLab's light and dark themes.

Bokeh draws on a canvas, where CSS variables (--jp-ui-font-color1 ...) do not reach. So figures get
transparent backgrounds (the page's --jp-layout-color shows through) and text, axes and grid in
mid greys readable on both a white and a near-black page.
"""

from __future__ import annotations

TEXT = "#8C8C8C"  # titles, axis labels and ticks: ~3.3:1 on white, ~5:1 on #111
GRID = "#8C8C8C"


def themed(fig) -> None:
    """Transparent backgrounds and theme-neutral text/axis colours for one figure."""
    fig.background_fill_color = None
    fig.border_fill_color = None
    fig.outline_line_color = None
    fig.title.text_color = TEXT
    for ax in fig.axis:
        ax.axis_label_text_color = ax.major_label_text_color = TEXT
        ax.axis_line_color = ax.major_tick_line_color = ax.minor_tick_line_color = TEXT
    for g in fig.grid:
        g.grid_line_color, g.grid_line_alpha = GRID, 0.25
    for leg in fig.legend:
        leg.background_fill_alpha, leg.border_line_alpha = 0.0, 0.0
        leg.label_text_color = TEXT
