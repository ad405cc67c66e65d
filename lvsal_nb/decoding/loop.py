"""The own incremental decoding loop over a detached KV cache.

Each forward feeds exactly one token, the one at the query row q, so the step engine can score the
next token's candidates from that forward alone. Prefill covers positions [0, n-1) without grad.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..cache import GrowingCache, StepCache, prefill
from ..context import TraceContext
from ..errors import UnsupportedModelError
from ..models.base import Adapter
from ..saliency.const import const_linears
from ..saliency.step import StepScores, score_candidates


class StepLoop:
    """Feeds one token per forward; `q` is the position of the token being fed.

    Args:
        ctx: the trace's adapter, prompt, probe and inputs.
        grad: run each forward with grad (probe mode "step"): `attn` then holds the target layers'
            rows of q and `hidden` the final hidden state, ready for `score`.
        k: candidates `score` will get per step. With k > 1 on CPU the language model's large
            linears are ConstLinears during grad forwards (their K-row backward runs on oneDNN,
            const.py).
    """

    kind = "dynamic"  # for the Trace's config (StaticStepLoop: "static" ...)
    capture_s = 0.0  # StaticStepLoop's CUDA graph capture time

    def __init__(self, ctx: TraceContext, grad: bool, k: int = 1):
        self.ctx, self.grad = ctx, grad
        self.adapter, self.prepared, self.probe = ctx.adapter, ctx.prepared, ctx.probe
        self.inputs = ctx.inputs  # prepared.inputs on the model's device/dtype
        config = ctx.adapter.model.config
        if grad:
            check_plain_head(ctx.adapter)
        self.cache = StepCache(config, ctx.probe) if grad else GrowingCache(config)
        self.pending = ctx.inputs["input_ids"][:, -1:]  # [1, 1] the token at q
        self.q = ctx.n - 1
        self.hidden: torch.Tensor | None = None  # [d], with graph, after a grad forward
        self.attn: list[torch.Tensor] = []  # the target layers' rows [1, heads, 1, q + 1], with graph
        self._logits: torch.Tensor | None = None
        lm = ctx.adapter.language_model
        linears = [m for m in lm.modules() if isinstance(m, nn.Linear)] if k > 1 else []
        self._linears = functools.partial(const_linears, linears)

    def prefill(self) -> None:
        """Positions [0, n-1) of the prompt into the cache, without grad."""
        prefill(self.ctx, self.cache)

    def prompt_cache(self) -> GrowingCache:
        """The cache right after `prefill`: the prompt's positions [0, n-1)."""
        return self.cache

    def forward(self) -> torch.Tensor:
        """Forward the pending token at q; returns logits [vocab] for position q+1 (no graph)."""
        ad = self.adapter
        kw = ad.step_inputs(self.pending, self.q + 1)
        if not self.grad:
            with self.probe.forward("off"), torch.no_grad():
                out = ad.model(**kw, **{ad.cache_kw: self.cache}, use_cache=True, logits_to_keep=1)
            return out.logits[0, -1]
        # enable_grad: also when the caller runs under torch.no_grad()
        with self.probe.forward("step") as rows, torch.enable_grad(), self._linears():
            out = ad.decoder(**kw, **{ad.cache_kw: self.cache}, use_cache=True)
            self.hidden = out.last_hidden_state[0, -1]
            self.attn = [rows[l] for l in self.probe.layers]
        with torch.no_grad():  # the head's gradient is closed form (score_candidates)
            self._logits = ad.head(self.hidden)
        return self._logits

    def score(self, candidates: list[int], context: str) -> StepScores:
        """Saliency of `candidates` (K token ids) at the last grad forward's query row (one batched
        backward); context: "text" | "outputs" (PAPER.md's J)."""
        return score_candidates(
            self.attn,
            self._logits,
            self.hidden,
            self.adapter.head,
            candidates,
            self.q,
            self.prepared.spans,
            context,
        )

    def push(self, token_id: int) -> None:
        """Accept the next token (the StepCache holds no graph; this step's graph is dropped)."""
        self.pending = torch.tensor([[token_id]], device=self.pending.device)
        self.q += 1
        self.hidden = self._logits = None
        self.attn = []


def check_plain_head(adapter: Adapter) -> None:
    """The step engine forms the LM head's gradient in closed form: it needs logits = h Wᵀ (+ b)."""
    cfg = adapter.text_config
    scaled = [a for a in ("final_logit_softcapping", "logit_scale") if getattr(cfg, a, None) not in (None, 1)]
    if not isinstance(adapter.head, nn.Linear) or scaled:
        raise UnsupportedModelError(
            f"{type(adapter.model).__name__}'s LM head is not a plain linear layer"
            + (f" ({', '.join(scaled)} is set)" if scaled else "")
            + "; the step engine (SGRS, engine='step') needs one. Trace with engine='sequence' instead."
        )
