"""const.py: products with constants whose vmapped (K-candidate) backward is one folded product."""

import pytest
import torch
from torch import nn

from lvsal_nb.saliency import const
from lvsal_nb.saliency.const import ConstLinear, ConstMatmul, const_linears, const_mm, folded_mm

needs_onednn = pytest.mark.skipif(not const.use_onednn, reason="torch built without oneDNN")


@pytest.fixture(autouse=True)
def small_weights_on_onednn(monkeypatch):
    """The tests' weights are small; the size floor is tested on its own below."""
    monkeypatch.setattr(const, "ONEDNN_MIN_NUMEL", 0)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("shape", [(1, 64), (5, 64), (2, 3, 64)])
@pytest.mark.parametrize("width", [48, 96])  # oneDNN for a tall constant, torch's matmul for a wide one
def test_const_mm_equals_matmul(dtype, tol, shape, width):
    x, c = _rand(*shape), _rand(64, width, seed=1)
    got = const_mm(x.to(dtype), c.to(dtype)).double()
    assert got.shape == (*shape[:-1], width)
    assert (got - x @ c).abs().max() <= tol * (x.abs() @ c.abs()).max()


def test_const_mm_float64_is_plain_matmul():
    x, c = _rand(5, 64), _rand(64, 48, seed=1)
    assert torch.equal(const_mm(x, c), x @ c)


@needs_onednn
def test_const_mm_runs_on_onednn():
    x, c = _rand(5, 64, dtype=torch.float32), _rand(64, 48, seed=1, dtype=torch.float32)
    with torch.profiler.profile() as prof:
        const_mm(x, c)
    names = {e.key for e in prof.key_averages()}
    assert "mkldnn::_linear_pointwise" in names and "aten::mm" not in names


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_folded_mm_under_vmap(dtype):
    gs, c = _rand(4, 1, 3, 64, dtype=dtype), _rand(64, 48, seed=1, dtype=dtype)
    got = torch.func.vmap(folded_mm, in_dims=(0, None))(gs, c)
    assert torch.allclose(got, gs @ c, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-4)
    got = torch.func.vmap(folded_mm, in_dims=(1, None), out_dims=1)(gs, c)  # batched along another dim
    assert torch.allclose(got, gs @ c, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-4)
    got = torch.func.vmap(folded_mm, in_dims=(0, None))(gs[:, 0, 0], c)  # a batch of vectors
    assert torch.allclose(got, gs[:, 0, 0] @ c, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-4)
    cs = _rand(4, 64, 48, seed=2, dtype=dtype)  # a batched constant: torch's own rule
    got = torch.func.vmap(folded_mm)(gs, cs)
    assert torch.allclose(got, gs @ cs[:, None], rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-4)


def _batched_vs_plain_torch(f, f_ref, x, n, atol):
    """The vmapped backward of f (built on a Const* function) against autograd through f_ref, the
    same computation in plain torch ops, one seed at a time."""
    xg = x.clone().requires_grad_(True)
    out = f(xg)
    seeds = _rand(n, *out.shape, seed=3, dtype=x.dtype)
    (batched,) = torch.func.vmap(lambda s: torch.autograd.grad(out, xg, s, retain_graph=True))(seeds)
    xr = x.clone().requires_grad_(True)
    ref_out = f_ref(xr)
    assert torch.allclose(out, ref_out, rtol=0, atol=atol)
    for k in range(n):
        (ref,) = torch.autograd.grad(ref_out, xr, grad_outputs=seeds[k], retain_graph=True)
        assert torch.allclose(batched[k], ref, rtol=0, atol=atol)


def test_const_matmul_batched_backward_equals_plain_autograd():
    x, c = _rand(1, 3, 2, 5), _rand(1, 3, 5, 7, seed=1)
    _batched_vs_plain_torch(
        lambda t: torch.softmax(ConstMatmul.apply(torch.tanh(t), c), -1),
        lambda t: torch.softmax(torch.matmul(torch.tanh(t), c), -1),
        x,
        4,
        atol=1e-14,
    )


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-14), (torch.float32, 1e-5)])
def test_const_linear_batched_backward_equals_plain_autograd(dtype, atol):
    x = _rand(1, 1, 32, dtype=dtype)
    w, b = _rand(48, 32, seed=1, dtype=dtype), _rand(48, seed=2, dtype=dtype)
    _batched_vs_plain_torch(
        lambda t: torch.tanh(ConstLinear.apply(torch.tanh(t), w, b)),
        lambda t: torch.tanh(nn.functional.linear(torch.tanh(t), w, b)),
        x,
        5,
        atol=atol,
    )


@needs_onednn
def test_small_or_wide_weights_stay_with_torch(monkeypatch):
    monkeypatch.setattr(const, "ONEDNN_MIN_NUMEL", 1 << 18)
    x = _rand(5, 512, dtype=torch.float32)
    small, wide, large = (_rand(*s, dtype=torch.float32) for s in ((512, 48), (512, 1024), (1024, 512)))
    assert not const.onednn_suits(small) and not const.onednn_suits(wide) and const.onednn_suits(large)
    assert not const.onednn_suits(large.double()) and not const.onednn_suits(large[None])
    with torch.profiler.profile() as prof:
        const_mm(x, small)
    assert "mkldnn::_linear_pointwise" not in {e.key for e in prof.key_averages()}
    layers = [nn.Linear(48, 512), nn.Linear(1024, 512), nn.Linear(512, 1024)]  # weight [out, in]
    with const_linears([m.requires_grad_(False) for m in layers]):
        assert ["forward" in m.__dict__ for m in layers] == [False, False, True]


def test_const_linears_patches_and_restores():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 4)).requires_grad_(False)
    model[2].weight.requires_grad_(True)  # trainable: left to torch
    wrapped = model[3].forward  # an instance forward (accelerate's hooks): left alone
    model[3].forward = wrapped
    x = torch.randn(2, 4, requires_grad=True)
    with const_linears([model[0], model[2], model[3]]):
        assert isinstance(model[0].forward(x).grad_fn, ConstLinear._backward_cls)
        assert not isinstance(model[2](x).grad_fn, ConstLinear._backward_cls)
        assert model[3].forward is wrapped
        with torch.no_grad():
            assert model[0](x).grad_fn is None
        assert model[0](x.detach()).grad_fn is None  # nothing to differentiate: plain F.linear
    assert "forward" not in model[0].__dict__ and model[3].__dict__["forward"] is wrapped
    with pytest.raises(RuntimeError), const_linears([model[0]]):
        raise RuntimeError  # restored on error too
    assert "forward" not in model[0].__dict__
