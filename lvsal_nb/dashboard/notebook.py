"""`lv.dashboard("RUN")` in a notebook: the dashboard's Bokeh page (without its Bokeh trace view)
and, beside the table, the notebook's TraceViewer of the selected answer, marking into the run's
label store (so the dashboard's "human" labels and the viewer's marks are the same)."""

from __future__ import annotations

import ipywidgets as W

from ..widgets.bokehjs import bokeh_widget, load_bokehjs
from .app import Dashboard
from .model import RunData


class DashboardWidget(W.HBox):
    """Bokeh dashboard + TraceViewer. `viewer` is the TraceViewer of the selected row (None before)."""

    def __init__(self, data: RunData, *, n_boot: int = 1000):
        self.data = data
        self.viewer = None
        self.side = W.VBox(
            [W.HTML("<i>select an answer in the table to open its trace</i>")],
            layout=W.Layout(min_width="560px"),
        )
        self.app = Dashboard(data, trace_panel=False, on_select=self.open_answer, n_boot=n_boot)
        load_bokehjs()
        self.bokeh = bokeh_widget(self.app.layout)
        super().__init__([self.bokeh, self.side])

    def open_answer(self, row: int):
        """Show the trace of answer `row` (read from the run now, not before)."""
        from ..widgets.viewer import TraceViewer

        tr = self.data.load_trace(row)
        if tr is None:
            self.side.children = [W.HTML(f"answer {row} has no trace (run kept with --no-traces)")]
            return None
        self.viewer = TraceViewer(tr, store=self.data.labels.store, author=self.data.labels.author)
        self.viewer.state.observe(self._marked)
        a = self.data.answers.iloc[row]
        self.side.children = [
            W.HTML(f"<b>{a['method']}</b> · image {a['image_id']}<br>{a['caption_html']}"),
            self.viewer,
        ]
        return self.viewer

    def _marked(self, what: str) -> None:
        if what in ("marks", "mark"):  # a mark made in the viewer: the detector curves follow
            self.data.labels.reload()
            self.app.detector.update()
