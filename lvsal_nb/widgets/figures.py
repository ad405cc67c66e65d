"""Bokeh figures of the viewer: token strip, image heatmap, text row, and the layout holding them
with the saliency curve (curves.py). Each builder takes its ColumnDataSources (filled from
columns.py / row_columns.py) and returns a figure; data change by assigning `.data`.

Sizes are in screen pixels; the token strip's coordinates are in characters and token lines.
"""

from __future__ import annotations

import io
import math

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    FixedTicker,
    HoverTool,
    LayoutDOM,
    LinearColorMapper,
    Range1d,
    TapTool,
)
from bokeh.plotting import figure

from ..palette import HALO_COLOR, HALO_WIDTH_PX, MARK_WIDTH_PX, SALIENCY_PALETTE, scale_label
from .columns import STRIP_CHARS
from .curves import saliency_curve
from .theme import TEXT, themed

WIDTH = 780  # the viewer's figure width, px
LINE_PX = 24  # one token line of the strip, px
SOURCE_NAMES = (
    "strip",
    "candidates",
    "strip_cursor",
    "thumb",
    "image",
    "context",
    "context_cursor",
    "curve",
    "rejected",
    "curve_cursor",
    "rows",  # every step's saliency row, for the page's own scrubbing (scrub.py)
    "steps",  # per step: where its row starts, its q, its x on the context axis
)
STRIP_TITLE = "Generated tokens (step 0 first): colour = saliency, dark = low, bright = high"
REJECTED_NOTE = "; ✗ = rejected by SGRS"
MONO = {"value": "monospace"}  # a literal font (a bare string would name a column)


def new_sources() -> dict[str, ColumnDataSource]:
    """One empty, named source per view (names as in SOURCE_NAMES)."""
    return {n: ColumnDataSource(name=n) for n in SOURCE_NAMES}


def _bare(fig, title_px: str = "11px") -> None:
    themed(fig)
    fig.axis.visible = fig.grid.visible = False
    fig.toolbar_location = None
    fig.title.text_font_size = title_px


def color_bar(fig, title: str) -> ColorBar:
    """A Viridis colour bar under a figure; its mapper's low/high and title state the scale."""
    bar = ColorBar(
        color_mapper=LinearColorMapper(palette=list(SALIENCY_PALETTE), low=0.0, high=1.0),
        orientation="horizontal",
        height=8,
        title=title,
        title_text_font_size="10px",
        title_text_color=TEXT,
        major_label_text_color=TEXT,
        major_label_text_font_size="9px",
        background_fill_color=None,
        padding=4,
    )
    fig.add_layout(bar, "below")
    return bar


def bar_of(fig) -> ColorBar | None:
    """The colour bar of a figure (None if it has none)."""
    return next((r for r in fig.below if isinstance(r, ColorBar)), None)


def set_scale(bar: ColorBar, hi: float, per: str = "per trace") -> None:
    """State the scale [0, hi] on a colour bar (mapper range and title)."""
    if bar is None:
        return
    hi = hi if hi > 0 else 1.0
    title = scale_label("saliency", 0.0, hi, per)
    if bar.color_mapper.high != hi:
        bar.color_mapper.high = hi
    if bar.title != title:
        bar.title = title


def token_strip(src: dict[str, ColumnDataSource]) -> figure:
    """Generated tokens as cells coloured by saliency (warm = low), rejected SGRS candidates in
    small grey under their token, a coloured underline for marks, a black outline at the cursor.
    Tap a token to move the cursor there."""
    fig = figure(
        width=WIDTH,
        height=3 * LINE_PX + 40,
        x_range=Range1d(-0.5, STRIP_CHARS + 0.5),
        y_range=Range1d(-2.0, 0.6),
        tools="",
        min_border=4,
        sizing_mode="stretch_width",
        title=STRIP_TITLE,  # + REJECTED_NOTE when the trace has rejections (TraceViewer)
    )
    _bare(fig)
    cells = fig.rect("x", "y", "w", "h", source=src["strip"], fill_color="fill", line_color=None)
    cells.nonselection_glyph = cells.selection_glyph = None  # a tap must not grey out the other tokens
    fig.text(
        "x",
        "y",
        text="text",
        source=src["strip"],
        text_align="center",
        text_baseline="middle",
        text_font=MONO,
        text_font_size="12px",
        text_color="text_color",
    )
    fig.text(
        "x",
        "y",
        text="text",
        source=src["candidates"],
        text_align="left",
        text_baseline="middle",
        text_font=MONO,
        text_font_size="10px",
        text_color=TEXT,
    )

    def outline(source: ColumnDataSource, **line) -> None:
        # an unfilled rect per row of `source`, on the overlay layer. Cursor and marks sit there:
        # a step change repaints only that layer, not the token cells and their text (a 512-token
        # strip took ~100 ms per step otherwise)
        fig.rect("x", "y", "w", "h", source=source, fill_alpha=0, level="overlay", **line)

    # the cursor: a thick outline in the theme-neutral grey (readable on light and dark pages)
    outline(src["strip_cursor"], line_color=TEXT, line_width=4)
    # marks: a 2 px outline (solid / dashed by label) on a white halo, visible on every palette
    # colour; drawn after the cursor so a mark stays visible under it
    halo_px = MARK_WIDTH_PX + 2 * HALO_WIDTH_PX
    outline(src["strip"], line_color=HALO_COLOR, line_width=halo_px, line_alpha="mark_alpha")
    outline(
        src["strip"],
        line_color="mark_color",
        line_width=MARK_WIDTH_PX,
        line_dash="mark_dash",
        line_alpha="mark_alpha",
    )
    color_bar(fig, "saliency, per trace")  # its scale: set_scale(bar_of(fig), ...)
    tips = [
        ("step", "@step"),
        ("token", "@text"),
        ("saliency", "@value"),
        ("p", "@prob"),
        ("τ", "@tau"),
        ("decision", "@decision"),
        ("rejected", "@rejected"),
        ("mark", "@mark"),
    ]
    fig.add_tools(TapTool(renderers=[cells]), HoverTool(renderers=[cells], tooltips=tips))
    return fig


def fit_strip(fig: figure, cells: dict) -> None:
    """Resize the strip to its number of lines (cells from columns.strip)."""
    if not cells["y"]:
        return
    bottom = min(cells["y"]) - (cells["line_h"][0] - 1.0) - 0.6
    fig.y_range.start, fig.y_range.end = bottom, 0.6
    fig.height = int(math.ceil((0.6 - bottom) * LINE_PX)) + 30 + 40  # + the title + the colour bar
    sal = [v for v in cells["saliency"] if v == v]
    set_scale(bar_of(fig), max(sal) if sal else 0.0)


def thumbnail_columns(png: bytes | None, grid: tuple[int, int] | None) -> dict:
    """The image thumbnail as an RGBA uint32 image stretched over the patch grid (rows, cols).

    Processors that centre-crop a non-square image see less than the thumbnail shows: the grid is
    then laid over the whole thumbnail, approximately."""
    if not png or not grid:
        return {"image": [], "dw": [], "dh": []}
    from PIL import Image

    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))[::-1]  # Bokeh's y points up
    return {
        "image": [np.ascontiguousarray(im).view(np.uint32).reshape(im.shape[:2])],
        "dw": [grid[1]],
        "dh": [grid[0]],
    }


def png_aspect(png: bytes | None) -> float:
    """Height / width of a PNG (1.0 without one)."""
    if not png:
        return 1.0
    from PIL import Image

    w, h = Image.open(io.BytesIO(png)).size
    return h / w


def image_heatmap(
    src: dict[str, ColumnDataSource], grid: tuple[int, int] | None, aspect: float = 1.0
) -> figure:
    """Image-token saliency of the current step over the patch grid, on the image thumbnail
    (`aspect`: its height / width)."""
    if not grid:  # a plain figure, not a Div: Div needs the bokeh-widgets bundle
        fig = figure(width=240, height=240, tools="", x_range=Range1d(0, 1), y_range=Range1d(0, 1))
        _bare(fig)
        fig.text([0.5], [0.5], text=["no image in this trace"], text_align="center", text_color="#8a8a8a")
        return fig
    rows, cols = grid
    fig = figure(
        width=240,
        height=max(120, int(240 * aspect)) + 30 + 40,
        x_range=Range1d(0, cols),
        y_range=Range1d(0, rows),
        tools="",
        min_border=4,
        title="Image tokens at this step",
    )
    _bare(fig)
    fig.image_rgba(image="image", x=0, y=0, dw="dw", dh="dh", source=src["thumb"])
    cells = fig.rect(
        "x", "y", 1, 1, source=src["image"], fill_color="fill", fill_alpha="alpha", line_color=None
    )
    fig.add_tools(HoverTool(renderers=[cells], tooltips=[("patch", "(@r, @c)"), ("saliency", "@text")]))
    color_bar(fig, "saliency, per trace")
    return fig


def context_row(src: dict[str, ColumnDataSource]) -> figure:
    """Text-token saliency of the current step: one bar per prompt/output position (blue: in J,
    the keys averaged into the score); the band marks where the step's token goes."""
    fig = figure(
        width=WIDTH - 250,
        height=240,
        tools="",
        min_border=4,
        y_range=Range1d(0, 1),
        x_range=Range1d(0, 1),
        title="Text tokens at this step (row q, over keys)",
        sizing_mode="stretch_width",
    )
    themed(fig)
    fig.title.text_font_size = "11px"
    fig.toolbar_location = None
    fig.vstrip(
        x0="x0", x1="x1", source=src["context_cursor"], fill_color="#ffe08a", fill_alpha=0.6, line_color=None
    )
    bars = fig.vbar(x="x", top="value", width=0.8, source=src["context"], fill_color="fill", line_color=None)
    fig.xaxis.ticker = FixedTicker(ticks=[])
    fig.xaxis.major_label_orientation = math.pi / 2
    fig.xaxis.major_label_text_font_size = "9px"
    fig.xgrid.visible = False
    tips = [("position", "@position"), ("token", "@token"), ("saliency", "@text")]
    fig.add_tools(HoverTool(renderers=[bars], tooltips=tips))
    return fig


def label_context(fig: figure, data: dict, top: float, max_labels: int = 60) -> None:
    """Token names under the bars (every n-th one when there are many) and the y range [0, top]
    (one scale for all steps, so scrubbing compares like with like)."""
    xs = data["x"]
    if not xs:
        return
    ticks = xs[:: max(1, math.ceil(len(xs) / max_labels))]
    if list(fig.xaxis.ticker.ticks) != ticks:
        fig.xaxis.ticker.ticks = ticks
    fig.xaxis.major_label_overrides = {x: data["token"][x] for x in ticks}
    fig.x_range.start, fig.x_range.end = -0.6, len(xs) - 0.4
    fig.y_range.end = top * 1.05 if top > 0 else 1.0


def viewer_layout(
    src: dict[str, ColumnDataSource], grid: tuple[int, int] | None, png: bytes | None = None
) -> tuple[LayoutDOM, dict]:
    """All four views in one Bokeh layout; returns it and its figures by name."""
    figs = {
        "strip": token_strip(src),
        "image": image_heatmap(src, grid, png_aspect(png)),
        "context": context_row(src),
        "curve": saliency_curve(src, WIDTH),
    }
    layout = column(
        figs["strip"],
        row(figs["image"], figs["context"], sizing_mode="stretch_width"),
        figs["curve"],
        sizing_mode="stretch_width",
    )
    return layout, figs
