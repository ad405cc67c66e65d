"""The naive reference: full teacher-forced recompute per step, autograd on full attention matrices.

Independent of the engines on purpose (own attention function, own LocoRE bias, own formula, all
parameters requiring grad): tests and benchmarks compare the engines against it. O(T²); never on a
hot path.
"""

from __future__ import annotations

import contextlib
import math

import torch

from ..models.base import Adapter, Prepared
from .model_lock import holding

NAME = "lvsal_reference"


class _Recorder:
    def __init__(self, locore=None, output_start: int = 0):
        self.attn: dict[int, torch.Tensor] = {}
        self.locore = locore
        self.output_start = output_start


_STATE: dict[str, _Recorder] = {}


def _reference_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    rec = _STATE.get("rec")
    rep = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(rep, dim=1)
    value = value.repeat_interleave(rep, dim=1)
    scores = query @ key.transpose(-1, -2) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    layer = getattr(module, "layer_idx", None)
    if rec is not None and layer is not None and rec.locore is not None:
        lc = rec.locore
        if lc.layers is None or layer in lc.layers:
            q_len, kv_len = scores.shape[-2], scores.shape[-1]
            bonus = math.log1p(lc.beta)
            for i in range(q_len):
                p = kv_len - q_len + i
                if p < rec.output_start:
                    continue
                lo = max(rec.output_start, p - lc.window + 1)
                hi = p if lc.exclude_self else p + 1
                for j in range(lo, hi):
                    scores[..., i, j] = scores[..., i, j] + bonus
    attn = torch.softmax(scores, dim=-1)
    if rec is not None and layer is not None:
        rec.attn[layer] = attn
    return (attn @ value).transpose(1, 2).contiguous(), attn


@contextlib.contextmanager
def _installed(adapter: Adapter, rec: _Recorder):
    with holding(adapter.model, "the naive reference"):  # it patches the model too
        with _patched(adapter, rec):
            yield rec


@contextlib.contextmanager
def _patched(adapter: Adapter, rec: _Recorder):
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(NAME, _reference_attention)
    AttentionMaskInterface.register(NAME, eager_mask)
    cfg = adapter.text_config
    prev = cfg._attn_implementation
    grads = [p.requires_grad for p in adapter.model.parameters()]
    cfg._attn_implementation_internal = NAME
    _STATE["rec"] = rec
    try:
        for p in adapter.model.parameters():
            p.requires_grad_(True)
        yield rec
    finally:
        cfg._attn_implementation_internal = prev
        _STATE.pop("rec", None)
        for p, g in zip(adapter.model.parameters(), grads):
            p.requires_grad_(g)


def reference_step(
    adapter: Adapter,
    prepared: Prepared,
    output_ids: list[int],
    t: int,
    candidates: list[int],
    layers,
    context: str = "text",
    locore=None,
) -> dict:
    """Saliency of each candidate for step t (predicting output t from q = n + t - 1), the slow way.

    Returns: {"q": int, "scores": [K] floats (NaN if J empty), "layer_scores": [K][L], "rows": [K][L][q+1]}.
    """
    rec = _Recorder(locore=locore, output_start=prepared.n)
    inputs = adapter.full_inputs(prepared, list(output_ids[:t]))
    q = inputs["input_ids"].shape[1] - 1
    J = prepared.spans.context(q, context)
    result = {"q": q, "scores": [], "layer_scores": [], "rows": []}
    with _installed(adapter, rec), torch.enable_grad():
        logits = adapter.model(**inputs, use_cache=False).logits[0, -1]
        logp = torch.log_softmax(logits, dim=-1)
        mats = [rec.attn[l] for l in layers]
        for c in candidates:
            grads = torch.autograd.grad(-logp[c], mats, retain_graph=True)
            per_layer, rows = [], []
            for A, G in zip(mats, grads):
                s = (A[0, :, q, :] * G[0, :, q, :]).abs().mean(0)  # mean over heads, [kv]
                s = s.detach() / max(float(s.detach().norm()), 1e-9)
                rows.append(s.detach())
                per_layer.append(float(s[J].mean()) if len(J) else float("nan"))
            result["layer_scores"].append(per_layer)
            result["scores"].append(sum(per_layer) / len(per_layer))
            result["rows"].append(torch.stack(rows))
    return result
