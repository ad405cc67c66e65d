"""The step engine's closed-form LM-head gradient equals autograd's, also where p(c) ≈ 1."""

import torch

from lvsal_nb.saliency.step import head_grads


def _autograd(h, w, c):
    h = h.clone().requires_grad_(True)
    (-torch.log_softmax(w @ h, -1)[c]).backward()
    return h.grad


def testhead_grads_match_autograd_when_confident():
    g = torch.Generator().manual_seed(0)
    d, vocab = 32, 500
    w64 = torch.randn(vocab, d, generator=g, dtype=torch.float64)
    h64 = 4 * w64[7] + 0.1 * torch.randn(d, generator=g, dtype=torch.float64)  # p(7) ≈ 1
    logits64 = w64 @ h64
    assert torch.softmax(logits64, -1)[7] > 0.999
    cands = [7, 3, 11, 7]  # a repeated id too
    ref = torch.stack([_autograd(h64, w64, c) for c in cands])
    assert torch.allclose(head_grads(logits64, w64, cands), ref, rtol=1e-12, atol=1e-14)
    # float32: within float32 rounding of the reference, relative to each row's own size
    got32 = head_grads(logits64.float(), w64.float(), cands).double()
    rel = (got32 - ref).norm(dim=-1) / ref.norm(dim=-1)
    assert rel.max() < 1e-5, rel
