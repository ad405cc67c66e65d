"""The standalone page's trace view: one answer's tokens (colour = saliency), its saliency curve
and its saliency matrix, with the marks; read from the run only when a row is selected.

Scales follow the colour language: per trace, [0, max over the whole trace], stated on the colour bar.
Steps are 0-based, as `Trace.table`.
"""

from __future__ import annotations

import math

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import Button, ColorBar, ColumnDataSource, Div, LinearColorMapper
from bokeh.palettes import Viridis256

from ..palette import color_for, text_color_for
from .style import MARK_COLORS, MARK_DASH, new_figure

PER_ROW = 10  # tokens per line of the strip


class TraceView:
    """Bokeh models of the trace view; `show(data, row)` fills them, `selected_step` is the token
    the label buttons act on (tap a token to choose it)."""

    def __init__(self, data):
        self.data = data
        self.key = self.trace_id = None
        self.selected_step: int | None = None
        self.title = Div(text="<i>select an answer in the table</i>", name="trace_title", width=520)
        self.strip_src = ColumnDataSource(_empty_strip())
        self.curve_src = ColumnDataSource({"step": [], "saliency": [], "color": []})
        self.matrix_src = ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": []})
        self.mapper = LinearColorMapper(palette=Viridis256, low=0, high=1)
        self.strip = new_figure(
            width=520,
            height=220,
            tools="tap",
            x_range=(-0.5, PER_ROW - 0.5),
            title="tokens (colour: saliency, per trace; tap one to label it)",
        )
        self.strip.axis.visible = False
        self.strip.grid.visible = False

        def cells(**style) -> None:
            # one rect per token cell (0.96 x 0.8 of a grid unit: a gap between neighbours)
            self.strip.rect("x", "y", 0.96, 0.8, source=self.strip_src, **style)

        # marks: a 4 px white halo under a 2 px coloured outline, visible on any fill
        cells(fill_alpha=0, line_color="halo", line_width=4)
        cells(
            fill_color="fill",
            line_color="mark",
            line_width=2,
            name="tokens",
            nonselection_fill_alpha=1.0,  # a tapped token must not fade the others
            nonselection_line_alpha=1.0,
        )
        cells(fill_alpha=0, line_color="mark_dashed", line_width=2, line_dash="dashed")
        self.strip.text(
            "x",
            "y",
            text="text",
            source=self.strip_src,
            text_color="text_color",
            text_align="center",
            text_baseline="middle",
            text_font_size="11px",
            nonselection_text_alpha=1.0,
        )
        self.curve = new_figure(width=520, height=170, title="saliency per step (0-based)", tools="")
        self.curve.line("step", "saliency", source=self.curve_src, color="#888")
        self.curve.scatter("step", "saliency", source=self.curve_src, color="color", size=7)
        self.matrix = new_figure(
            width=520,
            height=220,
            title="saliency matrix: steps x text context",
            tools="",
            x_axis_label="context position",
            y_axis_label="step",
        )
        self.matrix.image(
            "image", x="x", y="y", dw="dw", dh="dh", source=self.matrix_src, color_mapper=self.mapper
        )
        self.colorbar = ColorBar(color_mapper=self.mapper, title="saliency, per trace", width=8)
        self.matrix.add_layout(self.colorbar, "right")
        self.token_info = Div(text="", name="token_info", width=520)
        self.buttons = {
            name: Button(label=text, name=f"btn_{name}", width=120, disabled=True)
            for name, text in (
                ("confirm", "confirm CHAIR label"),
                ("flip", "correct CHAIR label"),
                ("hallucinated", "mark hallucinated"),
                ("correct", "mark correct"),
                ("unsure", "mark unsure"),
            )
        }
        self.strip_src.selected.on_change("indices", self._on_tap)
        self.layout = column(
            self.title, self.strip, self.token_info, row(*self.buttons.values()), self.curve, self.matrix
        )

    # ---- filling ------------------------------------------------------------------------------
    def show(self, answer_row: int) -> None:
        """Fill the view with answer `answer_row` (a row of the answers table): caption, token
        strip, saliency curve and matrix; no token selected."""
        a = self.data.answers.iloc[answer_row]
        self.key = a["key"]
        toks = self.data.answer_tokens(self.key)
        self.trace_id = toks["trace_id"].iat[0] if len(toks) else None
        self.selected_step = None
        self.title.text = (
            f"<b>{a['method']}</b> · image {a['image_id']} · {len(toks)} tokens<br>{a['caption_html']}"
        )
        self.refresh_tokens()
        self._fill_matrix(answer_row)
        for b in self.buttons.values():
            b.disabled = True
        self.token_info.text = ""

    def refresh_tokens(self) -> None:
        """Token strip and curve from the current labels (after a mark)."""
        if self.key is None:
            return
        toks = self.data.answer_tokens(self.key)
        sal = toks["saliency"].to_numpy(dtype=float)
        hi = float(np.nanmax(sal)) if np.isfinite(sal).any() else 1.0
        steps = toks["step"].to_numpy()
        labels = toks["label"].tolist()
        self.strip_src.data = {
            "x": (np.arange(len(steps)) % PER_ROW).tolist(),
            "y": (-(np.arange(len(steps)) // PER_ROW)).tolist(),
            "step": steps.tolist(),
            "text": [t.strip()[:9] or "␣" for t in toks["token"]],
            "fill": [color_for(v, 0.0, hi) for v in sal],
            "text_color": [text_color_for(v, 0.0, hi) for v in sal],
            "mark": [MARK_COLORS.get(lab) if MARK_DASH.get(lab) == "solid" else None for lab in labels],
            "mark_dashed": [
                MARK_COLORS.get(lab) if MARK_DASH.get(lab) == "dashed" else None for lab in labels
            ],
            "halo": ["white" if lab in MARK_COLORS else None for lab in labels],
            "label": labels,
            "source": [
                "human" if h else ("chair" if c else "")
                for h, c in zip(toks["human_label"], toks["chair_label"])
            ],
        }
        self.strip.y_range.start, self.strip.y_range.end = -(len(steps) // PER_ROW) - 0.6, 0.6
        self.curve_src.data = {
            "step": steps.tolist(),
            "saliency": [None if math.isnan(v) else v for v in sal],
            "color": [MARK_COLORS.get(lab, "#555") for lab in labels],
        }

    def _fill_matrix(self, answer_row: int) -> None:
        tr = self.data.load_trace(answer_row)  # the one trace file read: lazily, per selected row
        if tr is None or not len(tr):
            self.matrix_src.data = {"image": [], "x": [], "y": [], "dw": [], "dh": []}
            return
        start = tr.spans.context(tr.records[0].position, tr.config.get("context", "text"))[0]
        m = tr.matrix()[:, start:]
        hi = float(np.nanmax(m)) if np.isfinite(m).any() else 1.0
        self.mapper.low, self.mapper.high = 0.0, hi
        self.colorbar.title = f"saliency, 0 – {hi:.2g}, per trace"
        self.matrix_src.data = {
            "image": [np.nan_to_num(m, nan=0.0)],
            "x": [start],
            "y": [-0.5],
            "dw": [m.shape[1]],
            "dh": [m.shape[0]],
        }

    # ---- selection ----------------------------------------------------------------------------
    def _on_tap(self, _attr, _old, new) -> None:
        if not new or self.key is None:
            return
        d = self.strip_src.data
        i = new[0]
        self.selected_step = int(d["step"][i])
        chair = self.data.answer_tokens(self.key)["chair_label"].iat[i]
        self.buttons["confirm"].disabled = self.buttons["flip"].disabled = not chair
        for name in ("hallucinated", "correct", "unsure"):
            self.buttons[name].disabled = False
        self.token_info.text = (
            f"step {self.selected_step}: <b>{d['text'][i]}</b> · label "
            f"<b>{d['label'][i] or '-'}</b> ({d['source'][i] or 'none'})"
        )


def _empty_strip() -> dict:
    return {
        k: []
        for k in (
            "x",
            "y",
            "step",
            "text",
            "fill",
            "text_color",
            "mark",
            "mark_dashed",
            "halo",
            "label",
            "source",
        )
    }
