"""Methods side by side: the summary with bootstrap 95% intervals, and per-image differences of two
methods (paired: the same images), with the mean difference's interval and a histogram."""

from __future__ import annotations

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, DataTable, Div, NumberFormatter, Select, TableColumn

from .stats import CHAIR_METRICS, POPE_METRICS, paired_differences, paired_interval
from .style import new_figure

TITLES = {
    "chair_s": "CHAIR_S",
    "chair_i": "CHAIR_I",
    "recall": "recall",
    "avg_len": "length (words)",
    "accuracy": "POPE acc",
    "f1": "POPE F1",
}


def _fmt(v: float, lo: float, hi: float, pct: bool) -> str:
    k = 100.0 if pct else 1.0
    return f"{k * v:.1f} [{k * lo:.1f}, {k * hi:.1f}]"


class MethodsView:
    """Summary table of every method (bootstrap 95% intervals, `n_boot` resamples, `seed`) and the
    paired per-image difference of two chosen methods on one metric."""

    def __init__(self, data, *, n_boot: int = 1000, seed: int = 0):
        self.data = data
        self.summary = data.summary(n_boot, seed)  # computed once per run, shared by every page
        metrics = CHAIR_METRICS if data.task == "chair" else POPE_METRICS
        keys = ["method", "max_new_tokens"] + (["split"] if data.task == "pope" else [])
        src = {k: self.summary[k].astype(str).tolist() for k in keys}
        src["n"] = self.summary["n"].tolist()
        for m in metrics:
            src[m] = [
                _fmt(v, lo, hi, m != "avg_len")
                for v, lo, hi in zip(self.summary[m], self.summary[f"{m}_lo"], self.summary[f"{m}_hi"])
            ]
        cols = [TableColumn(field=k, title=k.replace("_", " ")) for k in keys] + [
            TableColumn(field="n", title="n")
        ]
        cols += [TableColumn(field=m, title=f"{TITLES[m]} (95% CI)", width=150) for m in metrics]
        self.table = DataTable(
            source=ColumnDataSource(src),
            columns=cols,
            width=900,
            height=200,
            index_position=None,
            name="summary_table",
        )
        note = Div(
            text=f"Rates in %, bootstrap 95% percentile intervals over answers ({n_boot} resamples, "
            f"seed {seed})."
        )
        diff_metrics = (
            ["chair_i", "chair_s", "recall", "n_words", "saliency"]
            if data.task == "chair"
            else ["correct", "saliency"]
        )
        first = data.methods[0]
        second = data.methods[1] if len(data.methods) > 1 else first
        self.a = Select(title="method A", value=first, options=data.methods, name="diff_a", width=140)
        self.b = Select(title="method B", value=second, options=data.methods, name="diff_b", width=140)
        self.metric = Select(title="per-image metric", value=diff_metrics[0], options=diff_metrics, width=140)
        self.diff_src = ColumnDataSource({"item_id": [], "max_new_tokens": [], "a": [], "b": [], "diff": []})
        num = NumberFormatter(format="0.000")
        self.diff_table = DataTable(
            source=self.diff_src,
            width=420,
            height=300,
            index_position=None,
            columns=[
                TableColumn(field="item_id", title="image"),
                TableColumn(field="max_new_tokens", title="max tokens"),
                TableColumn(field="a", title="A", formatter=num),
                TableColumn(field="b", title="B", formatter=num),
                TableColumn(field="diff", title="B - A", formatter=num),
            ],
        )
        self.hist_src = ColumnDataSource({"left": [], "right": [], "top": []})
        self.hist = new_figure(width=420, height=300, title="per-image B - A", tools="")
        self.hist.quad(left="left", right="right", bottom=0, top="top", source=self.hist_src, color="#888")
        self.diff_info = Div(text="", name="diff_info", width=850)
        for w in (self.a, self.b, self.metric):
            w.on_change("value", lambda _a, _o, _n: self.update_diff())
        self.update_diff()
        self.layout = column(
            self.table,
            note,
            row(self.a, self.b, self.metric),
            self.diff_info,
            row(self.diff_table, self.hist),
        )

    def update_diff(self) -> None:
        """Recompute the per-image differences (method A - method B) of the chosen metric: the
        table, the histogram and the mean difference's 95% interval."""
        ans = self.data.answers.assign(correct=self.data.answers.get("correct", 0) * 1.0)
        d = paired_differences(ans, self.a.value, self.b.value, self.metric.value)
        self.diff_src.data = {c: d[c].tolist() for c in self.diff_src.data}
        x = d["diff"].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if x.size:
            mean, lo, hi = paired_interval(x)
            counts, edges = np.histogram(x, bins=min(30, max(5, x.size // 5)))
            self.hist_src.data = {
                "left": edges[:-1].tolist(),
                "right": edges[1:].tolist(),
                "top": counts.tolist(),
            }
            self.diff_info.text = (
                f"{self.metric.value}: B - A over {x.size} paired answers: mean {mean:+.4f} "
                f"[{lo:+.4f}, {hi:+.4f}] (95% bootstrap); B lower on "
                f"{int((x < 0).sum())}, higher on {int((x > 0).sum())}"
            )
        else:
            self.hist_src.data = {"left": [], "right": [], "top": []}
            self.diff_info.text = "no paired answers"
