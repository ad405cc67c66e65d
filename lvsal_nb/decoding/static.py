"""The step engine over a fixed-capacity cache: every shape static, so on CUDA one decode step's
grad forward and its K-candidate backward are each captured once as a CUDA graph and replayed.

At batch 1 the eager step engine is bound by kernel launches (a 32-layer forward with grad and a
batched backward per token). Here the cache has room for the whole trace; the new key/value is
written at a position held in a device tensor, the causal mask and the own-key column (probe.own)
are built from that tensor, and positions past it hold zeros that the mask gives zero attention
(their saliency is exactly 0). Same numbers as `StepLoop` (tests/saliency/test_static.py); on a
CPU it runs the same code eagerly (what the tests check).
"""

from __future__ import annotations

import time
import warnings

import torch
from transformers import DynamicCache

from ..cache import GrowingCache, StaticStepCache, prefill
from ..context import TraceContext
from ..errors import UnsupportedModelError
from ..models.base import Adapter, Prepared, cache_keyword
from ..saliency.probe import Probe, aligned_len
from ..saliency.step import StepScores, batched_rows, head_grads, step_scores
from .loop import check_plain_head

WARMUP = 2  # eager runs on a side stream before capture (cuBLAS workspaces, allocator)


def static_supported(adapter: Adapter) -> bool:
    """Every decoder layer is full attention (a sliding window would need its own static mask), the
    LM head is a plain linear layer (the loop applies it itself, also without grad), and the model
    sits on one device (the position, mask and buffers are shared by all layers)."""
    types = getattr(adapter.text_config, "layer_types", None) or ["full_attention"]
    device_map = getattr(adapter.model, "hf_device_map", None) or {}
    if len({str(d) for d in device_map.values()}) > 1:
        return False
    try:
        check_plain_head(adapter)
    except UnsupportedModelError:
        return False
    return all(t == "full_attention" for t in types)


class StaticStepLoop:
    """StepLoop's interface (prefill, forward, score, push, q) over a StaticStepCache.

    Args:
        grad: as StepLoop's: forwards with grad, ready for `score`; False = plain decoding (the
            sequence engine's generation loop).
        ctx: the trace's adapter, prompt, probe and inputs (`rebind` serves another trace).
        k: candidates per `score` call (fewer are padded with the last one; the batch is static).
        capacity: positions the cache needs: prompt + max new tokens (rounded up to MASK_ALIGN, so
            that SDPA takes the loop's masks as they are).
        graphs: capture and replay CUDA graphs (CUDA only); False runs the same steps eagerly.
    """

    def __init__(self, ctx: TraceContext, grad: bool, k: int, capacity: int, graphs: bool):
        check_plain_head(ctx.adapter)
        ad, dev = ctx.adapter, ctx.device
        self.ctx, self.adapter = ctx, ad
        self.grad, self.k, self.graphs = grad, k, graphs
        self.capacity = aligned_len(capacity)
        self.q = self.q0 = ctx.n - 1
        self.cache_kw = cache_keyword(ad.language_model)
        self.capture_s = 0.0  # warm-up + capture, host time
        # ---- buffers, reused by address by every replay and every rebound trace
        ids = ctx.inputs["input_ids"]
        self.ids = torch.zeros(1, 1, dtype=ids.dtype, device=dev)  # [1, 1] the token being fed
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)  # [1] its position
        # rotary positions = pos + a per-prompt offset (Qwen's rope_deltas), held by the loop: a
        # graph must not read a model attribute that a later forward may replace
        self.pos_offset = torch.zeros_like(ad.rope_offset(dev))
        w = ad.head.weight
        self.g = torch.zeros(k, w.shape[1], dtype=w.dtype, device=dev)  # [K, d] ∂L_k/∂h per candidate
        # keys/values [1, h_kv, capacity, d] per layer: allocated by the first `prefill` (their
        # shapes are the model's cache layers')
        self.cache: StaticStepCache | None = None
        # ---- outputs of the captured halves (valid until the next forward / score)
        self.hidden = torch.empty(0)  # [d] final hidden state, with graph when grad
        self.logits = torch.empty(0)  # [vocab] for position q+1
        self.attn: list[torch.Tensor] = []  # target layers' rows [1, heads, 1, capacity], with graph
        self.rows = torch.empty(0)  # [K, 1, layers, capacity] saliency rows
        self._fwd_graph: torch.cuda.CUDAGraph | None = None
        self._bwd_graph: torch.cuda.CUDAGraph | None = None
        self._device = dev

    @property
    def prepared(self) -> Prepared:
        """The prompt of the trace being served."""
        return self.ctx.prepared

    @property
    def probe(self) -> Probe:
        """The probe of the trace being served."""
        return self.ctx.probe

    def rebind(self, ctx: TraceContext) -> None:
        """Serve another trace with these buffers and graphs. Only for a trace that bakes the same
        constants into the graphs (the kept-loop key: prompt length, capacity, K, layers, LocoRE,
        weights); its `prefill` writes into the same tensors, so the replays read the new trace's data."""
        if ctx.n - 1 != self.q0:
            raise RuntimeError(f"rebind: a {ctx.n}-token prompt for a loop built for {self.q0 + 1}")
        self.ctx = ctx
        self.q = ctx.n - 1
        self.capture_s = 0.0

    def prefill(self) -> None:
        """Prefill [0, n-1) eagerly into a growing cache, then copy it into the static buffers (the
        same ones again after `rebind`: the captured graphs read them by address)."""
        ad, dev, ctx = self.adapter, self._device, self.ctx
        grown = GrowingCache(ad.model.config)
        prefill(ctx, grown)
        if self.cache is None:
            keys, values = [], []
            for layer in grown.layers:
                for src, out in ((layer.keys, keys), (layer.values, values)):
                    out.append(src.new_empty((*src.shape[:-2], self.capacity, src.shape[-1])))
            self.cache = StaticStepCache(ad.model.config, ctx.probe, keys, values, self.pos)
        for layer, kb, vb in zip(grown.layers, self.cache.kbuf, self.cache.vbuf):
            for src, buf in ((layer.keys, kb), (layer.values, vb)):
                buf[..., : src.shape[-2], :].copy_(src)
                buf[..., src.shape[-2] :, :].zero_()  # unwritten, or a previous trace's outputs
        self.ids.copy_(ctx.inputs["input_ids"][:, -1:])
        self.pos.fill_(self.q)
        self.pos_offset.copy_(ad.rope_offset(dev))
        self.cache.probe = ctx.probe

    def prompt_cache(self) -> DynamicCache:
        """The prompt's positions [0, n-1) as a DynamicCache of views (SequenceEngine copies it)."""
        out = DynamicCache(config=self.adapter.model.config)
        n = self.ctx.n - 1
        if self.cache is None:
            raise RuntimeError("prompt_cache() before prefill()")
        for i, (kb, vb) in enumerate(zip(self.cache.kbuf, self.cache.vbuf)):
            out.update(kb[..., :n, :], vb[..., :n, :], i)
        return out

    # ---- the two captured halves -------------------------------------------------------------
    def _forward(self) -> None:
        ad, probe, L = self.adapter, self.probe, self.capacity
        keys = torch.arange(L, device=self.pos.device)
        own = (keys == self.pos).to(ad.head.weight.dtype)  # [L] one-hot of the query's own key
        mask = (keys <= self.pos).view(1, 1, 1, L)
        mode = "step" if self.grad else "off"
        with probe.forward(mode, q_pos=self.pos, own=own) as rows, torch.set_grad_enabled(self.grad):
            out = ad.language_model(
                input_ids=self.ids,
                attention_mask=mask,
                position_ids=self.pos_offset + self.pos,
                use_cache=True,
                **{self.cache_kw: self.cache},
            )
            self.hidden = out.last_hidden_state[0, -1]
            self.attn = [rows[l] for l in probe.layers] if self.grad else []
        with torch.no_grad():
            self.logits = ad.head(self.hidden)

    def _backward(self) -> None:
        self.rows = batched_rows(self.hidden, self.attn, self.g)  # [K, 1, layers, capacity]

    def _capture(self) -> None:
        t0 = time.perf_counter()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP):  # writes the same key/value at the same position each time
                self._forward()
                if self.grad:
                    self._backward()
        torch.cuda.current_stream().wait_stream(side)
        fwd, bwd = torch.cuda.CUDAGraph(), None
        with torch.cuda.graph(fwd):
            self._forward()
        if self.grad:
            bwd = torch.cuda.CUDAGraph()
            with torch.cuda.graph(bwd, pool=fwd.pool()):
                self._backward()
        self._fwd_graph, self._bwd_graph = fwd, bwd  # only complete captures are kept (and reused)
        self.capture_s = time.perf_counter() - t0

    # ---- StepLoop's interface ----------------------------------------------------------------
    def forward(self) -> torch.Tensor:
        """Forward the pending token at q; returns logits [vocab] for q+1 (valid until the next
        forward)."""
        if not self.graphs:
            self._forward()
        else:
            if self._fwd_graph is None:
                try:
                    self._capture()
                except RuntimeError as e:  # an op this model runs cannot be captured: stay exact, eagerly
                    warnings.warn(
                        f"CUDA graph capture failed ({e}); the step engine runs without graphs", stacklevel=2
                    )
                    self._fwd_graph = self._bwd_graph = None
                    self.graphs = False
                    self._forward()
                    return self.logits
            graph = self._fwd_graph
            assert graph is not None  # (_capture sets it)
            graph.replay()
        return self.logits

    def score(self, candidates: list[int], context: str) -> StepScores:
        """Saliency of `candidates` (1..k token ids) at q, from the last forward (one batched
        backward, replayed as a graph on CUDA); context: "text" | "outputs"."""
        if not self.grad:
            raise RuntimeError("score() needs a loop built with grad=True")
        if not 1 <= len(candidates) <= self.k:
            raise ValueError(f"{len(candidates)} candidates for a loop built for {self.k}")
        padded = list(candidates) + [candidates[-1]] * (self.k - len(candidates))
        with torch.no_grad():
            self.g.copy_(head_grads(self.logits, self.adapter.head.weight, padded))
        if self.graphs and self._bwd_graph is not None:
            self._bwd_graph.replay()
        else:
            self._backward()
        rows = self.rows[: len(candidates)].clone()  # the graph's buffer is rewritten next step
        return step_scores(rows, self.q, list(candidates), self.prepared.spans, context)

    @property
    def kind(self) -> str:
        """What ran, for the Trace's config."""
        return "static, CUDA graphs" if self.graphs else "static"

    def push(self, token_id: int) -> None:
        """Accept the next token: it is fed at q+1 by the next forward."""
        self.ids.fill_(token_id)
        self.pos.add_(1)
        self.q += 1
