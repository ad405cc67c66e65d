"""ViewerState: what a TraceViewer shows, as plain Python (no widgets, no Bokeh).

The state holds the trace (which grows while a live trace streams in), the cursor step, the
selected layer (None = mean over the traced layers), the colour scale of the cursor's row views
("trace": one fixed scale for all steps, or "step") and the marks of this trace: its own and those
of earlier runs of the same generation, found by content keys (fingerprint.py), so an identical
rerun after a kernel restart shows the marks made before. Renderers
subscribe with `observe(fn)`; `fn(what)` is called with what changed: "trace", "step", "layer",
"scale" or "marks". Every change happens under one re-entrant lock, so the decode thread and the kernel's
main thread never render at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..annotations import LABELS, MarkStore, default_author
from ..errors import ConfigError
from ..fingerprint import setup_key, step_keys
from ..trace import Trace

Listener = Callable[[str], None]
SCALES = ("trace", "step")  # the row views' colour scale: fixed over the trace, or this step's own


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
        self.scale = "trace"
        self.follow = True  # while streaming, the cursor stays on the newest step until the user moves it
        self.marks: dict[int, Mark] = {}
        self.lost = 0  # marks of earlier runs of this setup that match no step here (tokens changed)
        self._keys: list[str] = []  # step_keys(trace), kept in step with the trace
        self._setup = ""
        self._listeners: list[Listener] = []
        self._rekey()
        self.reload_marks()

    # ---- subscriptions -----------------------------------------------------------------------
    def observe(self, fn: Listener) -> None:
        """Call `fn(what)` after each change ("step", "layer", "scale", "trace", "marks")."""
        self._listeners.append(fn)

    def _notify(self, what: str) -> None:
        for fn in list(self._listeners):
            fn(what)

    @property
    def n_steps(self) -> int:
        """Steps in the trace shown (grows while a live trace decodes)."""
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

    def set_scale(self, scale: str) -> None:
        """Colour the cursor's row views (image heatmap) on one scale for the whole trace
        ("trace", the default: colours compare across steps) or on the step's own ("step":
        [0, max of this step], the step's pattern at full contrast)."""
        with self.lock:
            if scale not in SCALES:
                raise ConfigError(f"scale must be one of {SCALES} (per trace or per step), got {scale!r}")
            if scale != self.scale:
                self.scale = scale
                self._notify("scale")

    def set_trace(self, trace: Trace) -> None:
        """Show a grown (or final) version of the trace; the cursor follows the newest step when
        following, else stays where the user put it."""
        with self.lock:
            grown = trace.trace_id != self.trace.trace_id or len(trace.records) != self.n_steps
            self.trace = trace
            self._rekey()
            if self.layer is not None and self.layer not in trace.layers:
                self.layer = None
            if self.follow:
                self.step = max(self.n_steps - 1, 0)
            else:
                self.step = min(self.step, max(self.n_steps - 1, 0))
            if grown:  # new steps may be marked already, in an earlier run of the same generation
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
            self.store.add(
                self.trace.trace_id,
                step,
                label,
                token=token,
                note=note,
                author=self.author,
                setup=self._setup,
                step_key=self._keys[step],
            )
            self.marks[step] = Mark(label, note, self.author)
            self._notify("marks")

    def unmark(self, step: int | None = None) -> None:
        """Remove this author's mark of a step (default: the cursor's)."""
        with self.lock:
            step = self.step if step is None else int(step)
            key = self._keys[step] if 0 <= step < len(self._keys) else ""
            self.store.remove(self.trace.trace_id, step, author=self.author, step_key=key)
            self.reload_marks()

    def _rekey(self) -> None:
        self._keys, self._setup = step_keys(self.trace), setup_key(self.trace)  # ~1 µs per step

    def reload_marks(self, notify: bool = True) -> None:
        """Read the marks of this trace from the store: its own and those of earlier runs whose
        token and prefix match a step here (the latest per step over authors and runs); `lost`
        counts the earlier runs' marks that matched no step."""
        with self.lock:
            df, self.lost = self.store.latest_for(self.trace.trace_id, self._keys, self._setup)
            self.marks = {int(r.step): Mark(r.label, r.note, r.author) for r in df.itertuples()}
            if notify:
                self._notify("marks")
