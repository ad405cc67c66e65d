"""MarkPanel: label the cursor's token hallucinated / correct / unsure, with an optional note.

Tap a token in the strip (or scrub to it), then press a label: the mark is written to the store
at once and the token gets a coloured underline. A store error shows here instead of raising
inside a widget callback, where it would only reach the kernel log.
"""

from __future__ import annotations

import html

import ipywidgets as W

from ..errors import LvsalError
from .columns import MARK_COLORS, display
from .state import ViewerState

_BUTTONS = (
    ("hallucinated", "✗ hallucinated", "danger"),
    ("correct", "✓ correct", "success"),
    ("unsure", "? unsure", "warning"),
)


class MarkPanel(W.VBox):
    """Buttons, a note field and a line saying how the cursor's token is marked."""

    def __init__(self, state: ViewerState):
        self.state = state
        self.buttons = {}
        for label, text, style in _BUTTONS:
            b = W.Button(
                description=text,
                button_style=style,
                tooltip=f"mark this token {label}",
                layout=W.Layout(width="130px"),
            )
            b.on_click(lambda _b, label=label: self.mark(label))
            self.buttons[label] = b
        self.clear = W.Button(
            description="clear", tooltip="remove your mark of this token", layout=W.Layout(width="70px")
        )
        self.clear.on_click(lambda _b: self._safely(self.state.unmark))
        self.note = W.Text(
            placeholder="note (optional), saved with the mark",
            layout=W.Layout(width="auto", flex="1 1 200px", max_width="320px"),
        )
        self.info = W.HTML()
        row = W.HBox(
            [*self.buttons.values(), self.clear, self.note], layout=W.Layout(flex_flow="row wrap")
        )  # narrow windows wrap instead of cutting off
        super().__init__([row, self.info])
        self.refresh()

    def mark(self, label: str) -> None:
        """What a label button does: mark the cursor's step with the note, then empty the note."""
        if self._safely(self.state.mark, label, self.note.value):
            self.note.value = ""

    def _safely(self, fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except LvsalError as e:
            self.info.value = f"<span style='color:#d62728'>{html.escape(str(e))}</span>"
            return False

    def refresh(self) -> None:
        """Say how the cursor's token is marked (called by the viewer after every state change)."""
        st = self.state
        with st.lock:
            disabled = st.n_steps == 0
            for b in [*self.buttons.values(), self.clear]:
                b.disabled = disabled
            if disabled:
                self.info.value = "<i>no tokens yet</i>"
                return
            tok = html.escape(display(st.trace.records[st.step].token))
            m = st.marks.get(st.step)
            lost = (
                f" · {st.lost} mark{'s' if st.lost != 1 else ''} of an earlier run did not carry over "
                "(the token or one before it changed)"
                if st.lost
                else ""
            )
        if m is None:
            self.info.value = (
                f"step {st.step} <b>{tok}</b>: not marked · {len(st.marks)} marked in this trace{lost}"
            )
            return
        note = f" — “{html.escape(m.note)}”" if m.note else ""
        self.info.value = (
            f"step {st.step} <b>{tok}</b>: <b style='color:{MARK_COLORS[m.label]}'>{m.label}</b>"
            f"{note} <span style='color:#888'>by {html.escape(m.author)}</span> · "
            f"{len(st.marks)} marked in this trace{lost}"
        )
