"""Step engine: exact saliency of K candidates at one decode step (online; what SGRS needs).

With the KV cache detached, ∂L/∂A[q, :] from the single incremental forward of the token at q equals
the full-recompute gradient of that row (past keys/values do not depend on the current row). One
forward with grad from the lowest target layer up; one backward batched over the K candidates
(vmap), in which the cached keys/values are constants read once (const.py) and the LM
head's part is closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..trace import Spans
from .score import context_scores, saliency_rows


@dataclass
class StepScores:
    """Saliency of K candidates at query row q."""

    q: int
    token_ids: list[int]
    scores: torch.Tensor  # [K], NaN when J is empty
    layer_scores: torch.Tensor  # [K, layers]
    rows: torch.Tensor  # [K, layers, q + 1]


def score_candidates(
    attn: list[torch.Tensor],
    logits: torch.Tensor,
    hidden: torch.Tensor,
    head: torch.nn.Linear,
    candidates: list[int],
    q: int,
    spans: Spans,
    context: str,
) -> StepScores:
    """Backward of L_k = -log p(c_k) for K candidates into the rows captured by the step forward.

    The LM head's part is closed form (`head_grads`): one matrix-vector product for all K
    instead of K backward passes through the head.

    Args:
        attn: the rows the step forward captured, one per target layer: [1, heads, 1, q + 1] each.
        logits: [vocab] of the step forward.
        hidden: [d] final hidden state of that forward, with its graph (StepLoop.hidden).
        head: the LM head (a Linear: logits = h Wᵀ (+ b)).
        candidates: K token ids.
        q: the query row; spans, context: which keys are J (PAPER.md).
    Returns:
        StepScores of the K candidates.
    """
    with torch.no_grad():
        g = head_grads(logits, head.weight, candidates).to(hidden.dtype)  # [K, d] = ∂L_k/∂h
    rows = batched_rows(hidden, attn, g)  # [K, 1, layers, kv]
    return step_scores(rows, q, list(candidates), spans, context)


def batched_rows(hidden: torch.Tensor, attn: list[torch.Tensor], g: torch.Tensor) -> torch.Tensor:
    """Saliency rows [K, 1, layers, kv] of K candidates: one backward from `hidden` into the
    captured rows `attn`, batched over the K head gradients g [K, d]."""
    if g.shape[0] == 1:
        grads = [
            gr.unsqueeze(0) for gr in torch.autograd.grad(hidden, attn, grad_outputs=g[0], retain_graph=True)
        ]
    else:
        # torch.func.vmap, not is_grads_batched (the legacy vmap): it runs const.py's batching rules
        grads = list(torch.func.vmap(lambda gk: torch.autograd.grad(hidden, attn, gk, retain_graph=True))(g))
    with torch.no_grad():
        return saliency_rows(attn, grads)


def step_scores(rows: torch.Tensor, q: int, candidates: list[int], spans: Spans, context: str) -> StepScores:
    """StepScores from batched rows [K, 1, layers, kv] (keys past q, if any, are zero)."""
    with torch.no_grad():
        qpos = torch.tensor([q], device=rows.device)
        layer_scores = context_scores(rows, qpos, spans, context)[:, 0]  # [K, layers]
    return StepScores(
        q=q,
        token_ids=candidates,
        scores=layer_scores.mean(-1),
        layer_scores=layer_scores,
        rows=rows[:, 0, :, : q + 1],
    )


def head_grads(logits: torch.Tensor, w: torch.Tensor, candidates: list[int]) -> torch.Tensor:
    """∂L_k/∂h = Wᵀ(p − e_{c_k}) for each candidate: [K, d].

    Split as Wᵀp' + W_Cᵀ(p_C − I), p' = p outside the candidate set C: the coefficient p_c − 1 is
    formed before any product, as autograd does. (Wᵀp − W[c] cancels when p_c ≈ 1: 1e-3 relative
    error in float32 saliency.)
    """
    # float64 whatever the model's dtype: p_c − 1 at p_c ≈ 1 keeps its digits (issue 17.6)
    p = torch.softmax(logits.double(), dim=-1)
    idx = torch.tensor(sorted(set(candidates)), device=w.device)
    cand = torch.tensor(candidates, device=w.device)
    coef = p[idx][None, :] - (cand[:, None] == idx[None, :]).to(p.dtype)  # [K, |C|]
    rest = p.index_fill(0, idx, 0.0)
    return (rest.to(w.dtype) @ w)[None] + coef.to(w.dtype) @ w[idx]
