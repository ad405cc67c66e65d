"""Step engine: exact saliency of K candidates at one decode step (online; what SGRS needs).

With the KV cache detached, ∂L/∂A[q, :] from the single incremental forward of the token at q equals
the full-recompute gradient of that row (past keys/values do not depend on the current row). One
forward with grad from the lowest target layer up, one batched backward for all K candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..trace import Spans
from .probe import Probe
from .score import context_scores, saliency_rows


@dataclass
class StepScores:
    """Saliency of K candidates at query row q."""

    q: int
    token_ids: list[int]
    scores: torch.Tensor  # [K], NaN when J is empty
    layer_scores: torch.Tensor  # [K, layers]
    rows: torch.Tensor  # [K, layers, q + 1]


def detach_cache(cache) -> None:
    """Cut the graph out of a transformers Cache after a grad-enabled step (keeps values)."""
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor) and t.requires_grad:
                setattr(layer, name, t.detach())


def score_candidates(
    probe: Probe, logits: torch.Tensor, candidates: list[int], q: int, spans: Spans, context: str
) -> StepScores:
    """Batched backward of L_k = -log p(c_k) into the rows captured by the last step forward.

    Args:
        logits: [vocab] from the grad-enabled step forward (same forward that filled `probe.captured`).
        candidates: K token ids.
    """
    layers = list(probe.layers)
    attn = [probe.captured[l] for l in layers]  # each [1, heads, 1, q + 1]
    logp = torch.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)
    idx = torch.tensor(candidates, device=logits.device)
    losses = -logp[idx]  # [K]
    k = len(candidates)
    if k == 1:
        grads = [g.unsqueeze(0) for g in torch.autograd.grad(losses[0], attn)]
    else:
        eye = torch.eye(k, dtype=losses.dtype, device=losses.device)
        grads = list(torch.autograd.grad(losses, attn, grad_outputs=eye, is_grads_batched=True))
    with torch.no_grad():
        rows = saliency_rows(attn, grads)  # [K, 1, layers, kv]
        qpos = torch.tensor([q], device=rows.device)
        layer_scores = context_scores(rows, qpos, spans, context)[:, 0]  # [K, layers]
    return StepScores(
        q=q,
        token_ids=list(candidates),
        scores=layer_scores.mean(-1),
        layer_scores=layer_scores,
        rows=rows[:, 0],
    )
