"""The own decode loops a Session keeps between traces (`Session.keep_graphs`), and what to do when
the GPU runs out of memory while it keeps some.

A fixed-capacity loop (decoding/static.py) holds its cache buffers and, on CUDA, its captured graphs.
The next trace that would capture the same graphs (same prompt length, max_new_tokens, K, layers,
LocoRE settings and weights: `key`) reuses it and skips the capture; at most one loop per kind (the
step engine's, grad=True; the sequence engine's, grad=False) is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .context import TraceContext
from .decoding import runs
from .settings import TraceSettings


class KeptLoops:
    """The kept loops of one Session: `kept[grad] = (key, loop)`.

    Args:
        device, dtype: the Session's (part of every key; `release` empties the CUDA cache).
    """

    def __init__(self, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype
        self.kept: dict[bool, tuple[tuple, Any]] = {}

    def loop(self, ctx: TraceContext, settings: TraceSettings, grad: bool, k: int, static: bool, keep: bool):
        """The own loop for this trace: a kept one with the same key (rebound to `ctx`), else a new
        one (kept when `keep` and `static`; otherwise every kept loop is dropped first).

        Args:
            grad: the step engine's loop (True) or the sequence engine's generation loop (False).
            k: candidates per step; static: a fixed-capacity loop (see runs.make_loop).
        Returns:
            A loop, not yet prefilled.
        """
        if not (keep and static):
            self.kept = {}
            return runs.make_loop(ctx, settings, grad, k, static)
        key = self.key(ctx, settings, k)
        kept = self.kept.pop(grad, None)
        if kept is not None and kept[0] == key:
            loop = kept[1]
            loop.rebind(ctx)
        else:
            del kept  # its buffers go before the new loop allocates its own
            loop = runs.make_loop(ctx, settings, grad, k, static)
        self.kept[grad] = (key, loop)
        return loop

    def key(self, ctx: TraceContext, settings: TraceSettings, k: int) -> tuple:
        """Everything a captured step bakes in: shapes (prompt length, capacity, K), the probe's
        layers, LocoRE's settings and where its bonus starts, and the weights' addresses."""
        weights = tuple(p.data_ptr() for p in ctx.adapter.model.parameters())
        return (
            ctx.n,
            settings.max_new_tokens,
            k,
            ctx.probe.layers,
            ctx.probe.bias_layers,
            repr(settings.locore.to_dict() if settings.locore else None),
            str(self.dtype),
            str(self.device),
            weights,
        )

    def release(self) -> None:
        """Drop the kept loops (their buffers and CUDA graphs)."""
        self.kept = {}
        if self.device.type == "cuda":
            torch.cuda.empty_cache()  # hand the freed blocks back, for other processes and nvidia-smi

    def run(self, run: Callable[[], None], started: Callable[[], bool]) -> None:
        """run(); if the GPU runs out of memory while loops are kept, free them, and if no step has
        reached the caller yet (`started()` is False), run once more (from the start: same seed,
        same steps)."""
        for attempt in range(2):
            try:
                return run()
            except torch.OutOfMemoryError:
                if not self.kept:
                    raise
                if attempt or started():  # steps already reached the caller: theirs to rerun
                    self.release()
                    raise
            # here, not in the except block: the failed attempt's frames (and tensors) are gone
            self.release()
