"""No "Loading weights" progress bars from transformers while lvsal-nb loads its own models.

`lv.load("toy")` in a notebook left transformers' per-parameter loading bar in the cell's output
(issue 19 item 8): noise in every saved notebook, for a load that takes well under a second. The
bars are switched off only around our own loads; the user's setting (transformers' and
huggingface_hub's) is put back exactly afterwards, so their own `from_pretrained` calls keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_load_progress() -> Iterator[None]:
    """Within the block, transformers (and huggingface_hub) show no progress bars."""
    try:
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
        from transformers.utils import logging as tlog
    except ImportError:  # (no transformers: nothing to silence)
        yield
        return
    was_on, hub_off = tlog.is_progress_bar_enabled(), are_progress_bars_disabled()
    tlog.disable_progress_bar()  # (also switches off huggingface_hub's)
    try:
        yield
    finally:
        if was_on:
            tlog.enable_progress_bar()  # (also switches huggingface_hub's back on ...)
        if hub_off:
            disable_progress_bars()  # (... unless the user had them off)
