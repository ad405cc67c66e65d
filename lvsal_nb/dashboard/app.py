"""The dashboard's Bokeh document: answers table + trace view, methods side by side, detector view.

One `Dashboard` per browser session (or notebook output); the RunData behind it is shared and read once.
"""

from __future__ import annotations

from bokeh.layouts import column, row
from bokeh.models import Div, TabPanel, Tabs

from ..errors import LvsalError
from .detector_view import DetectorView
from .methods_view import MethodsView
from .table_view import AnswersTable
from .trace_view import TraceView


class Dashboard:
    """Bokeh models over one run. `layout` is the whole page; `trace_panel=False` leaves the Bokeh
    trace view out (the notebook shows a TraceViewer beside the table instead) and calls
    `on_select(row)`."""

    def __init__(self, data, *, trace_panel: bool = True, on_select=None, n_boot: int = 1000):
        self.data = data
        self.trace = TraceView(data) if trace_panel else None
        self._on_select = on_select
        self.table = AnswersTable(data, self.select)
        self._n_boot = n_boot
        self._methods: MethodsView | None = None
        self._detector: DetectorView | None = None
        self.status = Div(text="", name="status", width=900)
        if self.trace is not None:
            for name, b in self.trace.buttons.items():
                b.on_click(lambda name=name: self.label(name))
        answers = row(self.table.layout, self.trace.layout) if self.trace else self.table.layout
        info = data.info
        head = Div(
            text=f"<b>lvsal dashboard</b> · {data.run} · task {data.task} · dataset {info.get('dataset')}"
            f" · model {info.get('model')} · {len(data.answers)} answers, {len(data.tokens)} tokens",
            name="run_info",
        )
        self.tabs = Tabs(
            tabs=[
                TabPanel(child=answers, title="Answers"),
                TabPanel(child=Div(text="<i>computing the summary…</i>"), title="Methods"),
                TabPanel(child=Div(text="<i>computing the curves…</i>"), title="Detector"),
            ],
            name="tabs",
        )
        # the other tabs are built when first shown: the page opens with the table only
        self.tabs.on_change("active", lambda _a, _o, new: self._show_tab(new))
        self.layout = column(head, self.tabs, self.status)

    @property
    def methods(self) -> MethodsView:
        """The methods tab's view, built (and put into its tab) on first use."""
        if self._methods is None:
            self._methods = MethodsView(self.data, n_boot=self._n_boot)
            self._set_tab(1, self._methods.layout)
        return self._methods

    @property
    def detector(self) -> DetectorView:
        """The detector tab's view, built (and put into its tab) on first use."""
        if self._detector is None:
            self._detector = DetectorView(self.data)
            self._set_tab(2, self._detector.layout)
        return self._detector

    def _set_tab(self, i: int, child) -> None:
        """Put a built view into tab i: a new TabPanel list (the page redraws on a change of `tabs`,
        not of a panel's child)."""
        panels = list(self.tabs.tabs)
        panels[i] = TabPanel(child=child, title=panels[i].title)
        self.tabs.tabs = panels

    def _show_tab(self, i: int) -> None:
        if i == 1:
            self.methods  # noqa: B018  (built on first show)
        elif i == 2:
            self.detector  # noqa: B018

    def select(self, answer_row: int) -> None:
        """Show answer `answer_row` (a row of the answers table) in the trace view and tell the
        `on_select` callback."""
        if self.trace is not None:
            self.trace.show(answer_row)
        if self._on_select is not None:
            self._on_select(answer_row)

    def label(self, action: str) -> None:
        """A label button of the trace view: confirm / flip CHAIR's label, or mark the chosen token."""
        tv = self.trace
        if tv is None or tv.selected_step is None:
            return
        try:
            if action == "confirm":
                lab = self.data.labels.confirm(tv.trace_id, tv.selected_step)
            elif action == "flip":
                lab = self.data.labels.correct(tv.trace_id, tv.selected_step)
            else:
                lab = action
                self.data.labels.mark(tv.trace_id, tv.selected_step, action)
        except LvsalError as e:
            self.status.text = f"<span style='color:#D62728'>{e}</span>"
            return
        self.status.text = (
            f"<span class='lvsal-labelled'>step {tv.selected_step} labelled {lab} (human)</span>"
        )
        tv.refresh_tokens()
        if self._detector is not None:  # not built yet: it reads the labels when first shown
            self._detector.update()
