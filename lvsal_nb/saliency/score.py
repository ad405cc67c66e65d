"""PAPER.md's formula, shared by the step and sequence engines.

S^(l,h) = |A ⊙ ∂L/∂A| (row q), S̄^(l) = mean_h, row / max(‖row‖₂, 1e-9) over all keys,
S(c) = mean_l mean_{j∈J} S̄^(l)[q, j].
"""

from __future__ import annotations

import torch

from ..trace import Spans

EPS = 1e-9


def saliency_rows(attn: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """Head-mean, l2-normalised saliency rows.

    Args:
        attn: per target layer, A [1, heads, q, kv].
        grads: per target layer, ∂L_k/∂A [K, 1, heads, q, kv] for K candidates.
    Returns:
        rows [K, q, layers, kv] (float32 unless inputs are float64).
    """
    out = []
    for a, g in zip(attn, grads):
        s = (a.unsqueeze(0) * g).abs().mean(dim=2)[:, 0]  # [K, q, kv]
        out.append(s / s.norm(dim=-1, keepdim=True).clamp_min(EPS))
    rows = torch.stack(out, dim=2)
    return rows if rows.dtype == torch.float64 else rows.float()


def context_scores(rows: torch.Tensor, q_positions: torch.Tensor, spans: Spans, context: str) -> torch.Tensor:
    """Mean of each row over its J positions.

    Args:
        rows: [K, q, layers, kv] from `saliency_rows`; keys past each q are zero.
        q_positions: [q] absolute query positions (kv index) of the rows.
    Returns:
        layer scores [K, q, layers]; NaN where J is empty (context="outputs", first step).
    """
    csum = torch.nn.functional.pad(rows.cumsum(-1), (1, 0))  # csum[..., j] = sum of keys < j
    starts = [
        int(spans.context(int(q), context)[0]) if len(spans.context(int(q), context)) else int(q) + 1
        for q in q_positions
    ]
    start = torch.tensor(starts, device=rows.device)
    stop = q_positions.to(rows.device) + 1
    idx_hi = stop.view(1, -1, 1, 1).expand(*rows.shape[:3], 1)
    idx_lo = start.view(1, -1, 1, 1).expand(*rows.shape[:3], 1)
    total = csum.gather(-1, idx_hi) - csum.gather(-1, idx_lo)
    n = (stop - start).view(1, -1, 1, 1).to(rows.dtype)
    return (total / n).squeeze(-1)  # 0/0 -> NaN for empty J
