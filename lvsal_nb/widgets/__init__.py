"""Notebook views of traces: TraceViewer (scrub, inspect, mark) and Tuner (SGRS / LocoRE A/B).

lv.view(trace)                      # a Trace
lv.view("run.lvsal.parquet")        # a saved trace (.parquet or .json)
lv.view(session, image, prompt, sgrs=lv.SGRS())   # live: streams while decoding
lv.tune(session, image, prompt, truth={"star", "moon"})
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..trace import Trace
from .bokehjs import load_bokehjs
from .state import Mark, ViewerState
from .tuner import Tuner
from .viewer import TraceViewer


def view(
    source, image=None, prompt: str | None = None, *, store=None, author: str | None = None, **trace_kwargs
) -> TraceViewer:
    """A TraceViewer for a Trace, a trace file, or a Session to trace live.

    Args:
        source: a Trace; a path to a `.parquet` / `.json` trace file; or a Session, with `image`
            and `prompt` (and Session.trace keywords) to run in a worker thread.
        store: MarkStore for marks. Default: the user's default store.
        author: name saved with marks. Default: $LVSAL_AUTHOR or the login name.
    """
    if isinstance(source, Trace):
        tr = source
    elif isinstance(source, (str, Path)):
        tr = Trace.load(source)
    elif hasattr(source, "trace") and hasattr(source, "adapter"):
        if prompt is None:
            raise ConfigError("a live view needs a prompt: view(session, image, prompt, ...)")
        return TraceViewer.live(source, image, prompt, store=store, author=author, **trace_kwargs)
    else:
        raise ConfigError(
            f"view() takes a Trace, a trace file path or a Session, not {type(source).__name__}"
        )
    if image is not None or prompt is not None or trace_kwargs:
        raise ConfigError(
            "image, prompt and trace keywords only apply to a live view: view(session, image, prompt)"
        )
    return TraceViewer(tr, store=store, author=author)


def tune(session, image, prompt: str, **kwargs) -> Tuner:
    """The live SGRS / LocoRE tuner (see Tuner)."""
    return Tuner(session, image, prompt, **kwargs)


__all__ = ["Mark", "TraceViewer", "Tuner", "ViewerState", "load_bokehjs", "tune", "view"]
