"""Sequence engine: every step's exact saliency row from one isolated teacher-forced pass.

Above the lowest target layer each query sees the other positions' keys/values detached and its own
live (probe.py), so ∂(Σ_s L_s)/∂A[t, :] = ∂L_t/∂A[t, :]: one backward gives all rows. Positions stay
independent, so the pass runs in chunks over a detached KV cache — exact for any chunk size, memory
bounded by the chunk — which is also how a viewer streams while generation runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from transformers import DynamicCache

from ..cache import detach_cache, prefill, rewind_cache, snapshot
from ..context import TraceContext
from .score import context_scores, saliency_rows
from .step import StepScores


class SequenceEngine:
    """Scores generated tokens chunk by chunk. Feed the outputs as they grow; each `feed` scores
    every position whose next token is now known.

    Args:
        alternatives: extra candidates per step (the top-k other tokens), scored in the same backward.
        chunk: positions per forward (None = all available at once).
        prefilled: a cache already holding the prompt's positions [0, n-1) (e.g. the generation
            loop's, right after its prefill); it is copied, not recomputed.
    """

    def __init__(
        self,
        ctx: TraceContext,
        context: str,
        alternatives: int = 0,
        chunk: int | None = None,
        prefilled=None,
    ):
        self.ctx = ctx
        self.context, self.alternatives, self.chunk = context, alternatives, chunk
        self.ids = ctx.inputs["input_ids"][0].tolist()
        # (next row to score, scored steps not yet taken by the consumer): one attribute, replaced
        # in one store, so a Ctrl-C between two statements cannot leave the two out of step
        self._state: tuple[int, tuple] = (ctx.n - 1, ())
        self.device = ctx.device
        if prefilled is not None:
            self.cache = snapshot(prefilled, ctx.adapter.model.config)
        else:
            self.cache = DynamicCache(config=ctx.adapter.model.config)
            prefill(ctx, self.cache)

    def feed(self, output_ids: list[int]) -> Iterator[tuple[StepScores, torch.Tensor]]:
        """Yield (scores, log-probabilities of its K candidates) for each newly scorable step, in order
        (host tensors).

        Interrupt-safe: a step leaves the queue only once the consumer asked for the next one, so a
        consumer interrupted while handling a step gets it again from the next `feed` (the consumer
        drops steps it already has, by index); a chunk interrupted while being computed is rolled
        back and computed again.
        """
        self.ids = self.ids[: self.ctx.n] + list(output_ids)
        last_q = len(self.ids) - 2  # the last position whose next token is known
        while True:
            next_q, ready = self._state
            if ready:
                yield ready[0]
                self._state = (next_q, ready[1:])  # taken: the consumer came back for more
                continue
            if next_q > last_q:
                return
            stop = last_q + 1 if self.chunk is None else min(last_q + 1, next_q + self.chunk)
            self._state = (stop, tuple(self._chunk(next_q, stop)))

    def _chunk(self, start: int, stop: int) -> list[tuple[StepScores, torch.Tensor]]:
        """Score rows [start, stop) in one isolated forward + one backward, over a cache holding
        exactly [0, start) (an interrupted earlier attempt may have left some of this chunk's keys)."""
        ad, probe = self.ctx.adapter, self.ctx.probe
        rewind_cache(self.cache, start)
        tokens = torch.tensor([self.ids[start:stop]], device=self.device)
        kw = ad.step_inputs(tokens, stop)
        with probe.forward("sequence") as captured, torch.enable_grad():
            logits = ad.model(**kw, **{ad.cache_kw: self.cache}, use_cache=True).logits[0]  # [C, V]
            # float64: at p ≈ 1 the loss gradient p - 1 is lost to rounding in float32 (issue 17.6)
            logp = torch.log_softmax(logits.double(), dim=-1)
            target = torch.tensor(self.ids[start + 1 : stop + 1], device=self.device)
            cands = target[:, None]
            if self.alternatives:
                top = logp.detach().topk(self.alternatives + 1, dim=-1).indices  # [C, a+1]
                alt = [
                    [t for t in row if t != int(target[i])][: self.alternatives]
                    for i, row in enumerate(top.tolist())
                ]
                cands = torch.cat([cands, torch.tensor(alt, device=self.device)], 1)
            losses = -logp.gather(1, cands)  # [C, K]
            layers = list(probe.layers)
            attn = [captured[l] for l in layers]  # [1, heads, C, kv]
            k = cands.shape[1]
            if k == 1:
                grads = [g.unsqueeze(0) for g in torch.autograd.grad(losses.sum(), attn)]
            else:
                eye = torch.eye(k, dtype=losses.dtype, device=self.device)[:, None, :].expand(
                    k, losses.shape[0], k
                )
                grads = list(torch.autograd.grad(losses, attn, grad_outputs=eye, is_grads_batched=True))
        detach_cache(self.cache)
        with torch.no_grad():
            rows = saliency_rows(attn, grads)  # [K, C, layers, kv]
            qpos = torch.arange(start, stop, device=self.device)
            ls = context_scores(rows, qpos, self.ctx.prepared.spans, self.context)  # [K, C, layers]
            cand_logp = logp.detach().gather(1, cands).double().cpu()  # [C, K]
            # one device->host copy per chunk, not per step
            rows, ls, ids = rows.cpu(), ls.cpu(), cands.tolist()
            return [
                (
                    StepScores(
                        q=q,
                        token_ids=ids[i],
                        scores=ls[:, i].mean(-1),
                        layer_scores=ls[:, i],
                        rows=rows[:, i, :, : q + 1],
                    ),
                    cand_logp[i],
                )
                for i, q in enumerate(range(start, stop))
            ]
