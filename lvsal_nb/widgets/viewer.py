"""TraceViewer: scrub through the decoding steps of a Trace (saved or streaming) and mark tokens.

    v = TraceViewer(trace)                       # or lv.view(trace) / lv.view("run.lvsal.parquet")
    v = TraceViewer.live(session, image, prompt, sgrs=lv.SGRS())   # streams while it decodes
    v.state.set_step(3); v.state.set_layer(7); v.state.mark("hallucinated")
    v.stop(); v.trace                            # the partial trace is kept

Layout: step controls (play, slider, layer, stop), then one Bokeh layout (token strip; image
heatmap + text row of the cursor's step; saliency curve with τ), then the mark panel. A live view
starts without the Bokeh layout (text first, `live`) and adds it once a chunk is scored. The state
model (state.py) owns cursor, layer and marks; this class only maps state -> sources and widget
events -> state. Sources are updated by assigning `.data` (stream() was seen to duplicate rows).
Every change of the Bokeh document happens under `state.lock`, whichever thread makes it:
jupyter_bokeh sends one patch as several comm messages, which must not interleave.

Scrubbing happens in the browser (scrub.py / scrub.js): the page holds every step's row and
redraws the cursor's views itself on ←/→, taps and kernel moves; the step it shows syncs back to
`state.step` (the info line, candidates and mark panel follow without touching the figures).
Python re-sends data only for a new or grown trace, a layer change and marks.
"""

from __future__ import annotations

import html
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import ipywidgets as W
from bokeh.document import Document

from ..annotations import MarkStore
from ..trace import Trace
from . import columns as C
from . import row_columns as R
from .bokehjs import bokeh_widget, load_bokehjs, refresh_bundle
from .candidates import candidates_html
from .columns import top
from .curves import fit_ranges, show_series
from .figures import (
    REJECTED_NOTE,
    STRIP_TITLE,
    bar_of,
    fit_strip,
    label_context,
    new_sources,
    set_scale,
    thumbnail_columns,
    viewer_layout,
)
from .live import LiveTrace, pending_status
from .marking import MarkPanel
from .offline import OfflineDisplay, offline_bundle
from .scrub import ROWS_EVERY_S, SMALL_ROWS, ScrubCursor, attach, scrub_columns
from .state import ViewerState

# A live view shows its text at once and its figures once a chunk is scored, but not before this
# many seconds of decoding: drawing them costs the kernel ~0.2 s of Python (Bokeh serialisation)
# that competes with the decode thread, and the page 0.5-1 s it would rather spend on the text.
# Toy model, 13 tokens, paired median of 8 runs (loaded machine): figures drawn at the first chunk
# made the decode 1.67x slower than without a view; with this wait 1.01x. A decode shorter than
# this gets its figures when it ends.
FIGURES_AFTER_S = 0.5
MEAN = "mean"  # the layer dropdown's value for the mean over layers (None in the state)
SCALE_OPTIONS = [("per trace", "trace"), ("per step", "step")]


class TraceViewer(OfflineDisplay, W.VBox):
    """Widget over one Trace. `state` drives it; `sources` are its Bokeh data (by view name).

    Args:
        trace: the Trace to show (a live view starts from an empty one).
        store: the MarkStore for marks. Default: MarkStore() (the user's default file).
        author: name saved with marks. Default: $LVSAL_AUTHOR or the login name.
    """

    last: weakref.ref | None = None  # the viewer made last (for `%lvsal marks` after lv.view)

    def __init__(self, trace: Trace, *, store: MarkStore | None = None, author: str | None = None):
        # time.monotonic() of: "init" (start of construction), "built" (end), "shown" (the output's
        # bundle made), "figures" (Bokeh figures snapshot and added); for timing the first paint
        self.times: dict[str, float] = {"init": time.monotonic()}
        self.state = ViewerState(trace, store, author)
        TraceViewer.last = weakref.ref(self)
        self.sources = new_sources()
        layout, self.figures = viewer_layout(self.sources, trace.image_grid, trace.image_png)
        self.cursor: Any = ScrubCursor()  # Any: Bokeh properties read and write as plain values
        layout.tags = [self.cursor]  # in the document even before a callback refers to it
        doc = Document()
        doc.add_root(layout)
        with doc.models.freeze():  # one model recount, not one per callback (0.4 s -> 0.04 s)
            attach(self.cursor, self.sources, self.figures, bar_of(self.figures["image"]), doc)
        self.cursor.on_change("shown", lambda _a, _o, new: self._on_browser_step(new))
        self.live_trace: LiveTrace | None = None
        self._figures_on = True  # False while a live view shows its text only (TraceViewer.live)
        self._figures_timer: threading.Timer | None = None
        self._show_pending: Callable[[list[str]], None] = lambda _pending: None  # live: the status line
        self._syncing = False
        self._cells: dict = {}
        self._image_top = 0.0  # the heatmap's per-trace scale, recomputed when the trace or layer changes
        self._page_step = 0  # the step the page shows (as it last told us, or as we asked it)
        self._rows_sent = -math.inf  # time.monotonic() when the rows last went to the page
        self.play = W.Play(interval=500, min=0, max=0, tooltip="play through the steps")
        self.slider = W.IntSlider(min=0, max=0, description="step", layout=W.Layout(width="420px"))
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.layer = W.Dropdown(
            options=self._layer_options(trace),
            value=MEAN,
            description="layer",
            style={"description_width": "40px"},
            layout=W.Layout(width="210px"),
        )
        self.scale = W.Dropdown(
            options=SCALE_OPTIONS,
            value="trace",
            description="colour",
            style={"description_width": "44px"},
            layout=W.Layout(width="170px"),
            tooltip="heatmap colour scale: one for the whole trace (compare steps) or per step",
        )
        self.show_rejected = W.Checkbox(
            value=True,
            description="rejected",
            indent=False,
            layout=W.Layout(width="90px"),
            tooltip="list SGRS's rejected candidates under each token",
        )
        self.stop_button = W.Button(
            description="■ stop",
            button_style="danger",
            layout=W.Layout(width="80px", display="none"),
            tooltip="stop decoding, keep the partial trace",
        )
        self.info, self.status, self.cands = W.HTML(), W.HTML(), W.HTML()
        self.marker = MarkPanel(self.state)
        self._render("trace")  # fill every source before the BokehModel snapshots the document
        self._fill_row_views()
        self.bokeh = bokeh_widget(layout)
        wrap = W.Layout(flex_flow="row wrap", align_items="center")  # narrow windows: wrap, never cut off
        controls = [self.play, self.slider, self.layer, self.scale, self.show_rejected, self.stop_button]
        bar = W.HBox(controls, layout=wrap)
        self.bokeh.layout.width = "100%"  # the figures stretch to the output's width (sizing_mode)
        self.slider.layout = W.Layout(width="auto", min_width="260px", flex="1 1 320px", max_width="520px")
        self._parts = [bar, self.info, self.bokeh, self.cands, self.marker, self.status]
        super().__init__(self._parts, layout=W.Layout(width="100%"))
        self.slider.observe(self._on_slider, "value")
        self.layer.observe(lambda ch: self.state.set_layer(None if ch["new"] == MEAN else ch["new"]), "value")
        self.scale.observe(lambda ch: self.state.set_scale(ch["new"]), "value")
        self.stop_button.on_click(lambda _b: self.stop())
        self.show_rejected.observe(lambda _ch: self._render("layer"), "value")
        # taps on the strip and the curve move the cursor in the browser (scrub.js); the step
        # comes back through cursor.step
        self.state.observe(self._render)
        self.times["built"] = time.monotonic()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def live(
        cls,
        session,
        image,
        prompt: str,
        *,
        store: MarkStore | None = None,
        author: str | None = None,
        **trace_kwargs,
    ) -> TraceViewer:
        """Start `session.trace(image, prompt, **trace_kwargs)` in a worker thread and show the steps
        as they arrive. The Stop button (or `stop()`) ends it early; `wait()` blocks until done.

        The view starts light: controls and the status line, where each token's text shows as it
        is chosen. The Bokeh figures join it once the first chunk is scored (or decoding ends):
        rendering them takes the page 0.5-1 s, longer than a whole toy decode, and the text must
        not wait for that (issue 19 item 4)."""
        lt = LiveTrace(session, image, prompt, **trace_kwargs)
        viewer = cls(lt.partial(), store=store, author=author)
        viewer.live_trace = lt
        lt.on_update, lt.on_done = viewer.state.set_trace, viewer._live_done
        lt.on_pending = viewer._live_pending
        viewer._show_pending = pending_status(viewer)  # text first, greyed until its saliency arrives
        viewer.children = [p for p in viewer._parts if p is not viewer.bokeh]
        viewer._figures_on = False
        viewer.stop_button.layout.display = None
        viewer.status.value = "<i>decoding…</i>"
        lt.start()
        return viewer

    @staticmethod
    def _layer_options(trace: Trace):
        return [("mean of layers", MEAN)] + [(f"layer {l}", l) for l in trace.layers]

    # ---- public -------------------------------------------------------------------------------
    @property
    def trace(self) -> Trace:
        """The trace shown: the final one when a live trace is done, else the steps so far."""
        return self.state.trace

    def stop(self) -> None:
        """Stop a live trace after its current step; the partial trace stays in `trace`."""
        if self.live_trace is not None and self.live_trace.running:
            self.live_trace.stop()
            self.status.value = "<i>stopping…</i>"

    def wait(self, timeout: float | None = None) -> Trace:
        """Block until a live trace ends; returns `trace` (re-raises a decoding error)."""
        if self.live_trace is not None:
            self.live_trace.wait(timeout)
        return self.trace

    def _repr_mimebundle_(self, **kwargs):
        """The widget view plus the trace payload and static HTML (offline.py): a saved notebook
        shows the trace without a kernel."""
        load_bokehjs()  # BokehJS must be on the page before the BokehModel renders
        with self.state.lock:
            if self._figures_on:  # (else _show_figures snapshots them when they join the view)
                self._fill_row_views()  # the page redraws them on changes; a new view starts from these
                refresh_bundle(self.bokeh)  # the view starts from the current data, not the first
            bundle = self._full_bundle(**kwargs)
            self.times.setdefault("shown", time.monotonic())
            return bundle

    @property
    def figures_shown(self) -> bool:
        """Whether the Bokeh figures are in the view (a live view adds them after its first text)."""
        return self._figures_on

    def _show_figures(self) -> bool:
        """Draw the figures (skipped while hidden), snapshot them into the BokehModel and put it into
        the view, unless it is there already; returns whether it was added now."""
        with self.state.lock:
            if self._figures_on:
                return False
            self._figures_on = True
            # no patches for a document no page shows yet (~0.1 s each, and lost): the snapshot
            # carries the data; refresh_bundle listens to the document again
            self.bokeh._document.remove_on_change(self.bokeh)
            self._draw("trace")
            self._fill_row_views()
            refresh_bundle(self.bokeh)  # the page builds the figures from this snapshot
            self.children = self._parts
            self.times["figures"] = time.monotonic()
            return True

    def _offline(self) -> dict:
        return offline_bundle(self.state.trace, dict(self.state.marks), title="lvsal TraceViewer")

    # ---- events -> state ---------------------------------------------------------------------
    def _on_slider(self, change) -> None:
        if not self._syncing:
            self.state.set_step(change["new"])

    def _on_browser_step(self, step: int) -> None:
        """The page shows `step` (moved by a key, a tap, or a `goto` of ours it applied)."""
        with self.state.lock:
            self._page_step = int(step)
            self.state.set_step(step, user=self.cursor.moved_by == "user")

    def _live_pending(self, pending: list[str]) -> None:
        """LiveTrace's on_pending: the status line (the told text); once a chunk is scored, the
        figures, FIGURES_AFTER_S after decoding started at the earliest (a timer, once)."""
        self._show_pending(pending)
        lt = self.live_trace
        if not self.state.n_steps or self._figures_on or self._figures_timer is not None or lt is None:
            return
        wait = FIGURES_AFTER_S - (time.monotonic() - (lt.started or 0.0))
        if wait <= 0:
            self._show_figures()
        else:
            self._figures_timer = threading.Timer(wait, self._show_figures)
            self._figures_timer.daemon = True
            self._figures_timer.start()

    def _live_done(self, trace: Trace | None, error: BaseException | None) -> None:
        lt = self.live_trace
        secs = (lt.finished_at or 0) - (lt.started or 0)
        if trace is not None:
            self.state.set_trace(trace)
        self.stop_button.layout.display = "none"
        n = len(self.trace.records)
        if error is not None:
            self.status.value = (
                f"<span style='color:#d62728'>decoding failed after {n} steps: "
                f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>"
            )
        elif trace is not None and trace.interrupted:
            self.status.value = f"stopped: partial trace of {n} steps ({secs:.1f} s)"
        else:
            self.status.value = f"done: {n} steps in {secs:.1f} s"
        # the saved output's offline parts: the final trace, not the empty start. Before the figures
        # join: the page re-creates the output's view from this, and would draw them twice
        self.refresh_offline()
        if self._figures_timer is not None:  # the end adds the figures; the timer need not wait
            self._figures_timer.cancel()
        with self.state.lock:
            if not self._show_figures():
                self._fill_row_views()
                refresh_bundle(self.bokeh)  # a page reload then shows the final trace, not an empty one

    # ---- state -> views ----------------------------------------------------------------------
    def _render(self, what: str) -> None:
        """Refresh what depends on the change ("trace", "layer", "scale", "step" or "marks"): the
        widgets here, the figures in `_draw` (not while a live view has not shown them yet)."""
        st = self.state
        with st.lock:
            tr, step, layer = st.trace, st.step, st.layer
            if what == "trace" and self.layer.options != tuple(self._layer_options(tr)):
                self.layer.options = self._layer_options(tr)
            if self.layer.value != (MEAN if layer is None else layer):
                self.layer.value = MEAN if layer is None else layer
            if self.scale.value != st.scale:
                self.scale.value = st.scale
            if what == "trace":  # the checkbox only where there is something to hide
                shown = None if C.has_rejected(tr) else "none"
                if self.show_rejected.layout.display != shown:
                    self.show_rejected.layout.display = shown
            if self._figures_on:
                self._draw(what)
            self._sync_slider(step, st.n_steps)
            self.info.value = self._info_line()
            self.cands.value = candidates_html(tr.records[step] if st.n_steps else None)
            self.marker.refresh()
            if what == "trace" and self.live_trace is not None and self.live_trace.running:
                self.status.value = f"<i>decoding… {st.n_steps} steps so far</i>"

    def _draw(self, what: str) -> None:
        """The figures' part of `_render` (call it under the state's lock). The cursor's row views
        are drawn by the page (scrub.js) from the rows sent here."""
        st = self.state
        tr, step, layer = st.trace, st.step, st.layer
        if what in ("trace", "layer", "marks"):
            self._cells, cands = C.strip(tr, layer, st.marks, show_rejected=self.show_rejected.value)
            self.sources["strip"].data = self._cells
            fit_strip(self.figures["strip"], self._cells)
            self.sources["curve"].data = C.curve(tr, layer, st.marks)
        if what in ("trace", "layer"):
            self.sources["candidates"].data = cands
            self.sources["rejected"].data = rej = C.curve_rejected(tr, layer)
            curve = self.sources["curve"].data
            shown = curve["saliency"] + curve["tau"] + rej["saliency"]
            fit_ranges(self.figures["curve"], curve["step"], shown)
            has_tau = any(s.tau is not None for s in tr.records)
            has_rej = C.has_rejected(tr)
            show_series(self.figures["curve"], tau=has_tau, rejected=has_rej)
            title = STRIP_TITLE + (REJECTED_NOTE if has_rej else "")
            if self.figures["strip"].title.text != title:
                self.figures["strip"].title.text = title
            self._image_top = R.image_top(tr, layer)
            if st.scale == "trace":
                set_scale(bar_of(self.figures["image"]), self._image_top)
            label_context(self.figures["context"], R.context_bars(tr, step, layer), R.context_top(tr, layer))
        if what == "trace" and not self.sources["thumb"].data.get("image"):
            self.sources["thumb"].data = thumbnail_columns(tr.image_png, tr.image_grid)
        rows_late = what == "trace" and not self._send_rows(tr)
        if what in ("trace", "layer", "scale"):
            self.cursor.layer = -1 if layer is None else tr.layers.index(layer)
            self.cursor.image_top = self._image_top
            self.cursor.scale = st.scale
        if step != self._page_step:  # a move of ours (code, slider, live follow): ask the page
            self._goto(step)
        if rows_late:  # the page has no rows for the newest steps yet: draw the cursor's views here
            self._fill_row_views()

    def _send_rows(self, tr: Trace) -> bool:
        """Send the rows the page scrubs from (scrub.py), unless a live trace is growing and they
        went less than ROWS_EVERY_S ago and are large. Returns whether they went."""
        live = self.live_trace is not None and self.live_trace.running
        now = time.monotonic()
        if live and now - self._rows_sent < ROWS_EVERY_S:
            size = sum(4 * len(tr.layers) * (s.position + 1) for s in tr.records)
            if size > SMALL_ROWS:
                return False
        rows, steps, fields = scrub_columns(tr)
        self.sources["rows"].data = rows  # rows first: the page redraws when the fields change
        self.sources["steps"].data = steps
        for k, v in fields.items():
            if getattr(self.cursor, k) != v:
                setattr(self.cursor, k, v)
        self._rows_sent = now
        return True

    def _goto(self, step: int) -> None:
        if self.cursor.goto == step:  # the page has not reset it yet: a change it will see
            self.cursor.goto = -1
        self.cursor.goto = step
        self._page_step = step

    def _fill_row_views(self) -> None:
        """The cursor's row views computed here (columns.py, row_columns.py), for the snapshot a
        new page view starts from; the page itself redraws them on every change."""
        st = self.state
        with st.lock:
            tr, step, layer = st.trace, st.step, st.layer
            vals = R.image_patches(tr, step, layer, self._image_top)["value"]
            hi = top(vals) if st.scale == "step" else self._image_top
            self.sources["image"].data = R.image_patches(tr, step, layer, hi)
            set_scale(bar_of(self.figures["image"]), hi, f"per {st.scale}")
            self.sources["context"].data = R.context_bars(tr, step, layer)
            self.sources["context_cursor"].data = R.context_cursor(tr, step)
            self.sources["curve_cursor"].data = C.curve_cursor(step, st.n_steps)
            self.sources["strip_cursor"].data = C.strip_cursor(self._cells, step)
            self.cursor.step = self.cursor.shown = self._page_step = step

    def _sync_slider(self, step: int, n: int) -> None:
        self._syncing = True
        try:
            top = max(n - 1, 0)
            if self.slider.max != top:
                self.slider.max = self.play.max = top
            if self.slider.value != step:
                self.slider.value = step
        finally:
            self._syncing = False

    def _info_line(self) -> str:
        st = self.state
        if st.n_steps == 0:
            return "<i>no steps yet</i>"
        s = st.trace.records[st.step]
        v = C.score(s, st.trace.layers, st.layer)
        tau = "" if s.tau is None else f" (τ {s.tau:.3f})"
        rnd = "" if s.round is None else f", round {s.round}"
        where = "mean of layers" if st.layer is None else f"layer {st.layer}"
        val = "–" if math.isnan(v) else f"{v:.3f}"
        return (
            f"step <b>{st.step}</b> / {st.n_steps - 1} · <b>{html.escape(C.display(s.token))}</b> · "
            f"saliency {val}{tau} ({where}) · p {s.prob:.3f} · {s.decision}{rnd}"
        )
