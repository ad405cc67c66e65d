"""ViewerState: what a TraceViewer shows, as plain Python (no widgets, no Bokeh).

The state holds the trace (which grows while a live trace streams in), the cursor step, the
selected layer (None = mean over the traced layers) and the marks of this trace. Renderers
subscribe with `observe(fn)`; `fn(what)` is called with what changed: "trace", "step", "layer"
or "marks". Every change happens under one re-entrant lock, so the decode thread and the kernel's
main thread never render at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..annotations import LABELS, MarkStore, default_author
from ..errors import ConfigError
from ..trace import Trace

Listener = Callable[[str], None]


@dataclass(frozen=True)
class Mark:
    """A step's current label (the latest over authors)."""

    label: str
    note: str = ""
    author: str = ""


class ViewerState:
    """Cursor, layer and marks of one trace. Tests drive a viewer through this object.

    Args:
        trace: the Trace shown (may have no steps yet, for a live view).
        store: where marks are read and written. Default: MarkStore() (the user's default file).
        author: name written with each mark. Default: $LVSAL_AUTHOR or the login name.
    """

    def __init__(self, trace: Trace, store: MarkStore | None = None, author: str | None = None):
        self.lock = threading.RLock()
        self.trace = trace
        self.store = store if store is not None else MarkStore()
        self.author = author or default_author()
        self.step = 0
        self.layer: int | None = None
        self.follow = True  # while streaming, the cursor stays on the newest step until the user moves it
        self.marks: dict[int, Mark] = {}
        self._listeners: list[Listener] = []
        self.reload_marks()

    # ---- subscriptions -----------------------------------------------------------------------
    def observe(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def _notify(self, what: str) -> None:
        for fn in list(self._listeners):
            fn(what)

    @property
    def n_steps(self) -> int:
        return len(self.trace.records)

    # ---- transitions -------------------------------------------------------------------------
    def set_step(self, step: int, *, user: bool = True) -> None:
        """Move the cursor (clamped to the steps there are). A user move stops live following,
        except a move onto the newest step, which resumes it."""
        with self.lock:
            step = max(0, min(int(step), max(self.n_steps - 1, 0)))
            if user:
                self.follow = step >= self.n_steps - 1
            if step != self.step:
                self.step = step
                self._notify("step")

    def set_layer(self, layer: int | None) -> None:
        """Show one traced layer, or None for the mean over layers (what SGRS compares with τ)."""
        with self.lock:
            if layer is not None and layer not in self.trace.layers:
                raise ConfigError(f"layer {layer} was not traced; choose one of {self.trace.layers} or None")
            if layer != self.layer:
                self.layer = layer
                self._notify("layer")

    def set_trace(self, trace: Trace) -> None:
        """Show a grown (or final) version of the trace; the cursor follows the newest step when
        following, else stays where the user put it."""
        with self.lock:
            id_changed = trace.trace_id != self.trace.trace_id
            self.trace = trace
            if self.layer is not None and self.layer not in trace.layers:
                self.layer = None
            if self.follow:
                self.step = max(self.n_steps - 1, 0)
            else:
                self.step = min(self.step, max(self.n_steps - 1, 0))
            if id_changed:
                self.reload_marks(notify=False)
            self._notify("trace")

    # ---- marks -------------------------------------------------------------------------------
    def mark(self, label: str, note: str = "", step: int | None = None) -> None:
        """Label a step (default: the cursor's) and write it to the store at once."""
        with self.lock:
            step = self.step if step is None else int(step)
            if label not in LABELS:
                raise ConfigError(f"label must be one of {LABELS}, got {label!r}")
            if not 0 <= step < self.n_steps:
                raise ConfigError(f"step {step} is not in this trace (0..{self.n_steps - 1})")
            token = self.trace.records[step].token
            self.store.add(self.trace.trace_id, step, label, token=token, note=note, author=self.author)
            self.marks[step] = Mark(label, note, self.author)
            self._notify("marks")

    def unmark(self, step: int | None = None) -> None:
        """Remove this author's mark of a step (default: the cursor's)."""
        with self.lock:
            step = self.step if step is None else int(step)
            self.store.remove(self.trace.trace_id, step, author=self.author)
            self.reload_marks()

    def reload_marks(self, notify: bool = True) -> None:
        """Read this trace's marks from the store (the latest per step over all authors)."""
        with self.lock:
            df = self.store.latest(self.trace.trace_id)
            self.marks = {int(r.step): Mark(r.label, r.note, r.author) for r in df.itertuples()}
            if notify:
                self._notify("marks")
