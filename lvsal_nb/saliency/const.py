"""Products with constants (weights, detached keys/values) whose batched backward is one matmul.

The step engine's backward is vmapped over K candidates. The batching rule of is_grads_batched (the
legacy vmap) copied the cached keys once per candidate; these functions fold the candidates into
the rows instead, so each constant is read once. On CPU the folded product with a weight runs on
oneDNN where that is faster: on this project's AMD EPYC, MKL's product with 5 rows costs 1.8-2x its
1-row product when the weights stream from DRAM, oneDNN's about 1x (benchmarks/RESULTS.md, kernels).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

_fx = torch._C._functorch
_BATCHED = torch._C.DispatchKeySet(torch._C.DispatchKey.FuncTorchBatched)


def _onednn_works(dtype: torch.dtype) -> bool:
    """oneDNN's linear (an internal op, the one torch.compile's CPU backend calls) is there and takes a
    transposed dense weight of this dtype in place, as const_mm calls it; else torch's matmul is used.
    Probed per dtype: a CPU without bfloat16 support (some AMD EPYC) has no bfloat16 primitive."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    x, c = torch.arange(6.0).view(2, 3).to(dtype), torch.arange(6.0).view(3, 2).to(dtype)
    try:
        return torch.equal(torch.ops.mkldnn._linear_pointwise(x, c.t(), None, "none", [None], ""), x @ c)
    except (RuntimeError, TypeError):
        return False


_ONEDNN_DTYPES = tuple(d for d in (torch.float32, torch.bfloat16) if _onednn_works(d))
use_onednn = torch.float32 in _ONEDNN_DTYPES


def onednn_applies(x: torch.Tensor) -> bool:
    """Whether oneDNN can take tensors like x (CPU, float32 / bfloat16 where this CPU has it)."""
    return x.device.type == "cpu" and x.dtype in _ONEDNN_DTYPES


# Below ~1 MiB of float32 weights the per-call overhead outweighs the faster product (the toy
# model's SGRS ran 26% slower with its 64k-element weights routed through ConstLinear).
ONEDNN_MIN_NUMEL = 1 << 18


def onednn_suits(c: torch.Tensor) -> bool:
    """Whether x @ c goes through oneDNN: c is a large 2-D weight with at least as many rows as
    columns (for a wide c, [768, 2048], oneDNN reading cᵀ in place is slower than MKL:
    benchmarks/kernels.py), on CPU in float32 / bfloat16."""
    return c.dim() == 2 and c.shape[0] >= c.shape[1] and c.numel() >= ONEDNN_MIN_NUMEL and onednn_applies(c)


def const_mm(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """x @ c (any leading dims on x); through oneDNN where `onednn_suits(c)`."""
    if x.dtype == c.dtype and x.device == c.device and onednn_suits(c):
        rows = x.reshape(-1, x.shape[-1]).contiguous()
        # linear(rows, w) = rows @ wᵀ; w = cᵀ is a view: oneDNN reads c in place, no copy
        out = torch.ops.mkldnn._linear_pointwise(rows, c.t(), None, "none", [None], "")
        return out.reshape(*x.shape[:-1], c.shape[-1])
    return torch.matmul(x, c)


def folded_mm(g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """g @ c for a constant c, where g may be batched by torch.func.vmap (the step engine's K
    candidates): the vmapped dim is folded into g's rows, one product that reads c once.

    Unwraps the batched tensor itself (what functorch does for an autograd.Function's vmap rule,
    without its ~120 us of Python per call: 67 calls per step).
    """
    if not _fx.is_batchedtensor(g):
        return const_mm(g, c)
    if _fx.is_batchedtensor(c):  # not used by the engines (c is a constant); native batching rule
        return torch.matmul(g, c)
    level = _fx.maybe_get_level(g)
    x, bdim = _fx._unwrap_batched(g, level)
    with torch._C._ExcludeDispatchKeyGuard(_BATCHED):  # plain ops on the unwrapped tensor
        if x.dim() == 2:  # a batch of vectors: [V, D]
            return _fx._add_batch_dim(const_mm(x.movedim(bdim, 0), c), 0, level)
        x = x.movedim(bdim, -3)  # [..., V, M, D]
        v, m = x.shape[-3], x.shape[-2]
        out = const_mm(x.reshape(*x.shape[:-3], v * m, x.shape[-1]), c)  # [..., V*M, N]
        out = out.reshape(*out.shape[:-2], v, m, out.shape[-1]).movedim(-3, 0)
    return _fx._add_batch_dim(out, 0, level)


class ConstMatmul(torch.autograd.Function):
    """x @ c for a constant c (detached keys/values); its backward is a folded_mm.

    Old-style forward(ctx, ...): with setup_context, Function.apply binds the arguments through
    inspect.signature on every call (~25 us, ~90 calls per step)."""

    @staticmethod
    def forward(ctx, x, c):
        """x @ c ([..., m, k] @ [..., k, n] -> [..., m, n]); keeps c for the backward."""
        ctx.c = c
        return torch.matmul(x, c)

    @staticmethod
    def backward(ctx, g):
        """∂/∂x = g @ cᵀ as a folded_mm; c gets no gradient."""
        return folded_mm(g, ctx.c.transpose(-1, -2)), None


class ConstLinear(torch.autograd.Function):
    """F.linear(x, w, b) for constant w, b: the forward is F.linear itself (the kernel plain
    generation uses); the input's gradient g @ w is a folded_mm."""

    @staticmethod
    def forward(ctx, x, w, b):
        """F.linear(x, w, b): [..., in] -> [..., out]; keeps w for the backward."""
        ctx.w = w
        return F.linear(x, w, b)

    @staticmethod
    def backward(ctx, g):
        """∂/∂x = g @ w as a folded_mm; w and b get no gradient."""
        return folded_mm(g, ctx.w), None, None


def _const_forward(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.requires_grad and torch.is_grad_enabled():
        return ConstLinear.apply(x, module.weight, module.bias)
    return F.linear(x, module.weight, module.bias)


@contextlib.contextmanager
def const_linears(linears: Iterable[nn.Linear]) -> Iterator[None]:
    """Within: those of these nn.Linear layers whose input's gradient oneDNN computes faster
    (constant weights that `onednn_suits`) are ConstLinears. A layer whose forward is already
    wrapped (accelerate's offload hooks set an instance `forward`) is left alone."""
    mods = [
        m
        for m in linears
        if not m.weight.requires_grad and "forward" not in m.__dict__ and onednn_suits(m.weight)
    ]
    for m in mods:
        m.forward = functools.partial(_const_forward, m)
    try:
        yield
    finally:
        for m in mods:
            del m.forward
