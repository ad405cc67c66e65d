"""The own incremental decoding loop over a detached KV cache.

Each forward feeds exactly one token, the one at the query row q, so the step engine can score the
next token's candidates from that forward alone. Prefill covers positions [0, n-1) without grad.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from ..models.base import PER_POSITION_KEYS, Adapter, Prepared
from ..saliency.probe import Probe
from ..saliency.step import detach_cache


class StepLoop:
    """Feeds one token per forward; `q` is the position of the token being fed.

    Args:
        grad: run each forward with grad (probe.mode="step") so `probe.captured` holds row q.
    """

    def __init__(self, adapter: Adapter, prepared: Prepared, probe: Probe, inputs: dict, grad: bool):
        self.adapter, self.prepared, self.probe, self.grad = adapter, prepared, probe, grad
        self.inputs = inputs  # prepared.inputs on the model's device/dtype
        self.cache = DynamicCache(config=adapter.model.config)
        self.pending = inputs["input_ids"][:, -1:]
        self.q = prepared.n - 1

    def prefill(self) -> None:
        prefill(self.adapter, self.prepared, self.probe, self.inputs, self.cache)

    def forward(self) -> torch.Tensor:
        """Forward the pending token at q; returns logits [vocab] for position q+1."""
        kw = self.adapter.step_inputs(self.pending, self.q + 1)
        self.probe.mode = "step" if self.grad else "off"
        self.probe.new_forward()
        with torch.set_grad_enabled(self.grad):
            out = self.adapter.model(
                **kw, **{self.adapter.cache_kw: self.cache}, use_cache=True, logits_to_keep=1
            )
        return out.logits[0, -1]

    def push(self, token_id: int) -> None:
        """Accept the next token; the graph of the last forward is dropped from the cache."""
        if self.grad:
            detach_cache(self.cache)
        self.pending = torch.tensor([[token_id]], device=self.pending.device)
        self.q += 1


def prefill(adapter: Adapter, prepared: Prepared, probe: Probe, inputs: dict, cache) -> None:
    """Fill `cache` with positions [0, n-1) of the prompt (image included), without grad."""
    n = prepared.n
    if n < 2:
        raise ValueError("a prompt of at least two tokens is needed")
    pre = {k: (v[:, : n - 1] if k in PER_POSITION_KEYS else v) for k, v in inputs.items()}
    probe.mode = "off"
    probe.new_forward()
    with torch.no_grad():
        adapter.model(**pre, **{adapter.cache_kw: cache}, use_cache=True, logits_to_keep=1)
