"""The detector view: ROC and precision-recall of low saliency as a hallucination detector, per
layer and combined, with AUROC / AP; saliency of correct vs hallucinated object tokens; saliency
against position in the caption. Labels from a chosen source (chair / human / combined)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import Button, ColumnDataSource, Div, RadioButtonGroup

from .files import write_table
from .labels import SOURCES
from .rundir import CACHE_DIR
from .style import LINE_COLORS, MARK_COLORS, new_figure

MAX_POINTS = 400  # drawn per curve: a 500-image run has ~10k distinct thresholds
COMBINED = "saliency"  # the trace's score: mean over the target layers


class DetectorView:
    """ROC / PR curves, AUROC and AP of low saliency per target layer and combined, the
    correct-vs-hallucinated histogram and saliency against caption position, for one label source."""

    def __init__(self, data):
        self.data = data
        self.cols = [*data.layer_cols, COMBINED]
        self.source = RadioButtonGroup(
            labels=list(SOURCES), active=SOURCES.index("combined"), name="label_source"
        )
        self.roc = _rate_figure(
            "ROC (low saliency flags hallucination)", "false positive rate", "true positive rate"
        )
        self.pr = _rate_figure("precision - recall", "recall", "precision", top=1.02)
        self.roc.line([0, 1], [0, 1], color="#aaa", line_dash="dotted")
        self.roc_src, self.pr_src = {}, {}
        for i, c in enumerate(self.cols):
            name = "combined (mean of layers)" if c == COMBINED else f"layer {c[3:]}"
            color = "#000000" if c == COMBINED else LINE_COLORS[i % len(LINE_COLORS)]
            width = 3 if c == COMBINED else 1.5
            self.roc_src[c] = ColumnDataSource({"x": [], "y": []})
            self.pr_src[c] = ColumnDataSource({"x": [], "y": []})
            self.roc.line("x", "y", source=self.roc_src[c], color=color, line_width=width, legend_label=name)
            self.pr.line("x", "y", source=self.pr_src[c], color=color, line_width=width, legend_label=name)
        for f in (self.roc, self.pr):
            f.legend.location = "bottom_right"
            f.legend.background_fill_alpha = 0.3
        self.hist_src = {
            k: ColumnDataSource({"left": [], "right": [], "top": []}) for k in ("correct", "hallucinated")
        }
        self.hist = new_figure(
            width=420,
            height=300,
            title="saliency of object tokens (density)",
            tools="",
            x_axis_label="saliency",
        )
        self.pos_src = {k: ColumnDataSource({"x": [], "y": []}) for k in ("all", "correct", "hallucinated")}
        self.pos = new_figure(
            width=420,
            height=300,
            title="mean saliency by position in the caption",
            x_axis_label="relative position (0 = first token, 1 = last)",
            tools="",
        )
        for k in ("correct", "hallucinated"):
            self.hist.quad(
                left="left",
                right="right",
                bottom=0,
                top="top",
                source=self.hist_src[k],
                color=MARK_COLORS[k],
                alpha=0.45,
                legend_label=k,
            )
        for k, color in (
            ("all", "#888888"),
            ("correct", MARK_COLORS["correct"]),
            ("hallucinated", MARK_COLORS["hallucinated"]),
        ):
            self.pos.line(
                "x", "y", source=self.pos_src[k], color=color, legend_label=f"{k} tokens", line_width=2
            )
        self.table = Div(text="", name="detector_table", width=420)
        self.export_labels = Button(label="export labels (Parquet + CSV)", name="export_labels", width=220)
        self.export_tokens = Button(label="export per-token table", name="export_tokens", width=220)
        self.export_info = Div(text="", name="export_info", width=850)
        self.source.on_change("active", lambda _a, _o, _n: self.update())
        self.export_labels.on_click(lambda: self.export("labels"))
        self.export_tokens.on_click(lambda: self.export("tokens"))
        self.update()
        self.layout = column(
            row(Div(text="labels from:"), self.source),
            row(self.roc, self.pr, self.table),
            row(self.hist, self.pos),
            row(self.export_labels, self.export_tokens),
            self.export_info,
        )

    @property
    def label_source(self) -> str:
        """The chosen label source: "chair", "human" or "combined"."""
        return SOURCES[self.source.active]

    def update(self) -> dict:
        """Recompute every curve from the current labels; returns the curves (by score column)."""
        t = self.data.tokens
        y = self.data.labels.hallucinated(self.label_source)
        curves = self.data.curves(self.label_source, self.cols)
        for c in self.cols:
            got = curves.get(c)
            self.roc_src[c].data = _thin(got["fpr"], got["tpr"]) if got else {"x": [], "y": []}
            self.pr_src[c].data = _thin(got["recall"], got["precision"]) if got else {"x": [], "y": []}
        rows = "".join(
            f"<tr><td>{'combined' if c == COMBINED else 'layer ' + c[3:]}</td>"
            f"<td class='auroc' data-col='{c}'>{v['auroc']:.4f}</td><td>{v['ap']:.4f}</td>"
            f"<td>{v['n_pos']} / {v['n']}</td></tr>"
            for c, v in curves.items()
        )
        lab = y.dropna()
        self.table.text = (
            f"<b>labels: {self.label_source}</b> · {int(lab.sum())} hallucinated, "
            f"{int((~lab).sum())} correct tokens<table><tr><th>score</th><th>AUROC</th><th>AP</th>"
            f"<th>halluc. / n</th></tr>{rows}</table>"
            + ("" if curves else "<i>need both hallucinated and correct labels</i>")
        )
        sal = t[COMBINED].to_numpy(dtype=float)
        hal = y.fillna(False).to_numpy(dtype=bool)
        cor = (~y).fillna(False).to_numpy(dtype=bool)
        ok = np.isfinite(sal)
        edges = np.linspace(0, np.nanmax(sal[ok]) if ok.any() else 1.0, 31)
        for k, m in (("correct", cor), ("hallucinated", hal)):
            v = sal[ok & m]
            dens, _ = np.histogram(v, bins=edges, density=True) if v.size else (np.zeros(30), None)
            self.hist_src[k].data = {
                "left": edges[:-1].tolist(),
                "right": edges[1:].tolist(),
                "top": dens.tolist(),
            }
        bins = np.linspace(0, 1, 11)
        pos = t["rel_pos"].to_numpy(dtype=float)
        for k, sel in (("all", ok), ("correct", ok & cor), ("hallucinated", ok & hal)):
            which = np.clip(np.digitize(pos[sel], bins) - 1, 0, 9)
            sums = np.bincount(which, sal[sel], minlength=10)
            cnt = np.bincount(which, minlength=10)
            keep = cnt > 0
            self.pos_src[k].data = {
                "x": ((bins[:-1] + 0.05)[keep]).tolist(),
                "y": (sums[keep] / cnt[keep]).tolist(),
            }
        self.curves = curves
        return curves

    def export(self, what: str) -> list[Path]:
        """Write the labels (every source) or the per-token table to RUN/dashboard/exports/
        as Parquet and CSV (atomic writes)."""
        df = self.data.labels.labels_table() if what == "labels" else self.data.labels.token_table()
        out = self.data.run / CACHE_DIR / "exports"
        paths = [write_table(df, out / f"{what}.{ext}") for ext in ("parquet", "csv")]
        self.export_info.text = f"wrote {len(df)} rows to " + ", ".join(f"<code>{p}</code>" for p in paths)
        return paths


def _rate_figure(title: str, x_label: str, y_label: str, top: float = 1.0):
    """An empty 420 x 380 px figure for one curve per score column, both axes rates: x in [0, 1],
    y in [0, top] (above 1 leaves room for a precision of 1 drawn on the frame)."""
    return new_figure(
        width=420,
        height=380,
        title=title,
        x_axis_label=x_label,
        y_axis_label=y_label,
        x_range=(0, 1),
        y_range=(0, top),
        tools="",
    )


def _thin(x: np.ndarray, y: np.ndarray, most: int = MAX_POINTS) -> dict:
    """At most `most` points of a curve for drawing (evenly spaced along it, both ends kept); the
    areas in the table come from every point."""
    if len(x) > most:
        i = np.unique(np.linspace(0, len(x) - 1, most).round().astype(int))
        x, y = x[i], y[i]
    return {"x": x.tolist(), "y": y.tolist()}
