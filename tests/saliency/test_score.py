"""The formula on hand-made numbers (no model)."""

import math

import torch

from lvsal_nb.saliency.score import context_scores, saliency_rows
from lvsal_nb.trace import Spans


def test_rows_are_head_mean_abs_then_l2_normalised():
    A = torch.tensor([[[[0.5, 0.5, 0.0]], [[0.2, 0.3, 0.5]]]], dtype=torch.float64)  # [1, 2 heads, 1 q, 3 kv]
    G = torch.tensor([[[[[1.0, -2.0, 3.0]], [[-1.0, 1.0, 2.0]]]]], dtype=torch.float64)  # [K=1, 1, 2, 1, 3]
    rows = saliency_rows([A], [G])  # [K, q, layers, kv]
    raw = [(0.5 + 0.2) / 2, (1.0 + 0.3) / 2, (0.0 + 1.0) / 2]
    norm = math.sqrt(sum(x * x for x in raw))
    assert torch.allclose(rows[0, 0, 0], torch.tensor([x / norm for x in raw], dtype=torch.float64))


def test_context_scores_average_over_j():
    spans = Spans(system=(0, 1), image=(1, 3), prompt=(3, 5), output=(5, 8))
    row = torch.arange(8, dtype=torch.float64)  # keys 0..7
    rows = row.view(1, 1, 1, 8).repeat(1, 2, 1, 1)  # K=1, q=2, layers=1
    q = torch.tensor([4, 6])
    text = context_scores(rows, q, spans, "text")
    assert text[0, 0, 0] == (3 + 4) / 2 and text[0, 1, 0] == (3 + 4 + 5 + 6) / 4
    outs = context_scores(rows, q, spans, "outputs")
    assert math.isnan(outs[0, 0, 0]) and outs[0, 1, 0] == (5 + 6) / 2
