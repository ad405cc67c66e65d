"""_ConstMatmul: a matmul by a constant whose batched backward reads the constant once."""

import torch

from lvsal_nb.saliency.probe import _ConstMatmul


def test_batched_backward_equals_one_by_one():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(1, 3, 5, 7, generator=g, dtype=torch.float64)
    out = torch.softmax(_ConstMatmul.apply(torch.tanh(x), c), -1)
    assert torch.equal(_ConstMatmul.apply(x, c), torch.matmul(x, c))
    seeds = torch.randn(4, *out.shape, generator=g, dtype=torch.float64)
    (batched,) = torch.autograd.grad(out, x, grad_outputs=seeds, is_grads_batched=True, retain_graph=True)
    for k in range(4):
        (one,) = torch.autograd.grad(out, x, grad_outputs=seeds[k], retain_graph=True)
        assert torch.allclose(batched[k], one, rtol=0, atol=1e-14)


def test_vmap_over_both_operands():
    g = torch.Generator().manual_seed(1)
    xs, cs = torch.randn(4, 2, 3, generator=g), torch.randn(4, 3, 5, generator=g)
    got = torch.func.vmap(_ConstMatmul.apply)(xs, cs)
    assert torch.allclose(got, torch.stack([x @ c for x, c in zip(xs, cs)]), atol=1e-6)
    got = torch.func.vmap(_ConstMatmul.apply, in_dims=(None, 0))(xs[0], cs)
    assert torch.allclose(got, torch.stack([xs[0] @ c for c in cs]), atol=1e-6)
