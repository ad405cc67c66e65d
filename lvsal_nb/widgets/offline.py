"""What a viewer or Tuner output carries besides the live widget, so it survives the kernel.

A widget output alone is `application/vnd.jupyter.widget-view+json`: without the kernel (a saved
notebook reopened, nbconvert HTML, VS Code, GitHub) that is "model not found" or a repr. So every
output also carries, in one MIME bundle:

- `application/vnd.lvsal.trace+json`: the trace payload (Trace.to_json, 5 digits) with the marks
  the viewer shows, rendered by the lab extension;
- `text/html`: static_html.py's self-contained page (scrubs in the browser, no kernel, no CDN);
- `text/plain`: one line naming the trace (not the widget tree's repr).

The output is shown with a display id, so a live view that finishes after it was shown replaces
its (then empty) offline parts with the final trace (`OfflineDisplay.refresh_offline`).
"""

from __future__ import annotations

import uuid

from ..trace import MIME_TYPE, Trace
from .bokehjs import in_kernel
from .static_html import static_html

DIGITS = 5  # decimals of floats in the trace payload


def trace_payload(trace: Trace, marks: dict) -> dict:
    """The lvsal MIME payload of a trace with `marks` (step -> Mark / label) as [{step, label, note}]."""
    d = trace.to_json(digits=DIGITS)
    d["marks"] = [
        {"step": int(k), "label": getattr(m, "label", m), "note": getattr(m, "note", "")}
        for k, m in sorted(marks.items())
        if 0 <= int(k) < len(trace.records)
    ]
    return d


def offline_bundle(trace: Trace | None, marks: dict, *, title: str, html_extra: str = "") -> dict:
    """The MIME entries of an output that need no kernel (see the module docstring)."""
    if trace is None:
        return {"text/plain": f"<{title}: no run yet>", "text/html": f"<p><i>{title}: no run yet</i></p>"}
    return {
        "text/plain": f"<{title}: {trace!r}>",
        MIME_TYPE: trace_payload(trace, marks),
        "text/html": html_extra + static_html(trace, marks, title=title),
    }


class OfflineDisplay:
    """Mixin for a widget: display it with the offline parts and a display id; `refresh_offline()`
    re-sends the bundle (e.g. when a live run ends). Subclasses define `_offline()` -> dict."""

    _display_id: str | None = None

    def _offline(self) -> dict:  # pragma: no cover - each widget defines it
        raise NotImplementedError

    def _full_bundle(self, **kwargs) -> dict:
        data = super()._repr_mimebundle_(**kwargs)  # the widget view (+ a long repr, replaced)
        data.update(self._offline())
        return data

    def _ipython_display_(self):
        from IPython.display import display

        if self._display_id is None:
            self._display_id = uuid.uuid4().hex
        display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)

    def refresh_offline(self) -> None:
        """Replace the shown output's bundle with the current one (no-op when not shown)."""
        if self._display_id is None or not in_kernel():
            return
        from IPython.display import update_display

        update_display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)
