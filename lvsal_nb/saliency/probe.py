"""The probe: one attention function, registered with transformers' AttentionInterface as "lvsal".

It computes the same attention as eager/SDPA, and on demand
- keeps the post-softmax rows of the target layers as differentiable tensors (`Probe.captured`),
- isolates positions above the lowest target layer (sequence engine, DESIGN.md "Two exact engines"),
- adds a pre-softmax bias built once per forward (LocoRE).

Only text-decoder attention modules that carry a `_lvsal_probe` attribute are affected; the vision
tower and any unprobed module take the plain SDPA path. `attached(...)` installs it and restores the
model exactly on exit, also on error.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedModelError
from .const import ConstMatmul
from .model_lock import holding, no_sigint

NAME = "lvsal"
# SDPA's memory-efficient kernel (the one that takes a float mask on CUDA) copies a mask whose
# strides, but the last, are not multiples of 8 into a padded one in every call, i.e. every layer
MASK_ALIGN = 8
_REGISTER_LOCK = threading.Lock()
_registered = False
MODES = ("off", "step", "sequence")  # Probe.forward

# bias_fn(q_positions [q] absolute kv indices: a device tensor, or a range when known on the host,
#         kv_len, device, dtype) -> additive bias [q, kv] or None (best from `mask_zeros`)
BiasFn = Callable[["torch.Tensor | range", int, torch.device, torch.dtype], "torch.Tensor | None"]


@dataclass
class Probe:
    """Per-model state read by the attention function during one forward.

    Set up per forward only through `with probe.forward(mode, ...) as rows:`, which also clears it
    again (on exceptions and Ctrl-C too). Modes: "off" (plain attention; the bias still applies),
    "step" (capture the target rows of a q_len=1 forward over a `StepCache`; its own key/value reach
    the probe through `hand_live`), "sequence" (capture all rows, isolate positions).

    Args:
        layers: decoder layers whose post-softmax rows are captured.
        bias_fn: LocoRE's bias function (None: no bias); built once per forward.
        bias_layers: layers that apply the bias (None: all).
    """

    layers: tuple[int, ...] = ()
    bias_fn: BiasFn | None = None
    bias_layers: frozenset[int] | None = None  # None = all layers
    # ---- per forward: only `forward()` sets these, and clears them on exit -----------------
    mode: str = field(default="off", init=False)
    captured: dict[int, torch.Tensor] = field(default_factory=dict, init=False)  # layer -> A [b, h, q, kv]
    live: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, init=False)  # own k, v
    # step mode over a fixed-capacity cache (decoding/static.py): the query's position [1] and a
    # one-hot of it over the cache's keys [kv]; None = the own key is the last one
    q_pos: torch.Tensor | None = field(default=None, init=False)
    own: torch.Tensor | None = field(default=None, init=False)
    _bias_key: tuple | None = field(default=None, init=False)
    _bias: torch.Tensor | None = field(default=None, init=False)
    _mask_key: tuple | None = field(default=None, init=False)
    _mask: torch.Tensor | None = field(default=None, init=False)

    @property
    def lowest(self) -> int:
        """The lowest target layer (below it no graph is needed); huge when there are none."""
        return min(self.layers) if self.layers else 1 << 30

    @contextlib.contextmanager
    def forward(
        self, mode: str = "off", *, q_pos: torch.Tensor | None = None, own: torch.Tensor | None = None
    ) -> Iterator[dict[int, torch.Tensor]]:
        """The per-forward state for the model forward(s) run inside the block.

        Args:
            mode: "off" | "step" | "sequence" (see the class docstring).
            q_pos: step mode over a fixed-capacity cache: the query's position [1] (device tensor).
            own: with q_pos: one-hot [kv] of the query's own key among the cache's keys.
        Yields:
            The captured rows, layer -> A [b, heads, q, kv]: take what you need inside the block.
            On exit every per-forward reference (rows, live keys, bias, mask) is dropped.
        """
        if mode not in MODES:
            raise ValueError(f"probe mode must be one of {MODES}, got {mode!r}")
        self._clear()
        self.mode, self.q_pos, self.own = mode, q_pos, own
        try:
            yield self.captured
        finally:
            self._clear()

    def hand_live(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> bool:
        """A step cache hands the new token's live key/value [1, h_kv, 1, d] of `layer`; True when
        the probe keeps them (step mode: the cache must then store them detached)."""
        if self.mode != "step":
            return False
        self.live[layer] = (key, value)
        return True

    def _clear(self) -> None:
        self.mode = "off"
        self.captured, self.live = {}, {}
        self.q_pos = self.own = None
        self._bias_key = self._mask_key = None
        self._bias = self._mask = None

    def additive_mask(
        self,
        bias: torch.Tensor | None,
        mask: torch.Tensor | None,
        q_len: int,
        kv_len: int,
        like: torch.Tensor,
    ) -> torch.Tensor | None:
        """The mask as an additive float tensor, plus the bias if any; built once per forward (the
        mask tensor is shared by all layers). None when one row sees every key and has no bias."""
        key = (None if mask is None else (mask.data_ptr(), tuple(mask.shape)), q_len, kv_len, id(bias))
        if self._mask_key != key:
            if mask is None and q_len == 1:  # one row that sees every key: the bias is the whole mask
                self._mask = None if bias is None else bias[None, None]  # (a view keeps its strides)
            else:
                m = _additive(mask, q_len, kv_len, like)
                if bias is not None:
                    m = torch.add(m, bias, out=mask_zeros(m.shape, like.dtype, like.device))
                self._mask = m
            self._mask_key = key
        return self._mask

    def bias_for(self, layer: int, q_len: int, kv_len: int, device, dtype) -> torch.Tensor | None:
        """The bias [q_len, kv_len] for `layer` (None: no bias there), built once per forward."""
        if self.bias_fn is None or (self.bias_layers is not None and layer not in self.bias_layers):
            return None
        key = (q_len, kv_len, device, dtype)
        if self._bias_key != key:  # built once per forward, shared by all layers
            # host-known positions stay a range: the bias function need not touch the device for them
            q_pos = self.q_pos if self.q_pos is not None else range(kv_len - q_len, kv_len)
            self._bias = self.bias_fn(q_pos, kv_len, device, dtype)
            self._bias_key = key
        return self._bias


def _softmax_dtype(dtype: torch.dtype) -> torch.dtype:
    # float32 softmax for half types (as eager does); float64 stays float64 (exactness tests)
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


def lvsal_attention(
    module: nn.Module,
    query: torch.Tensor,  # [b, h, q, d]
    key: torch.Tensor,  # [b, h_kv, kv, d]
    value: torch.Tensor,  # [b, h_kv, kv, d]
    attention_mask: torch.Tensor | None,  # bool [b, 1, q, kv] (True = attend), or None = plain causal
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """transformers' attention function "lvsal": the same output as SDPA/eager, [b, q, h, d], and
    no weights; with a probe on the module it applies the bias and captures / isolates per its mode."""
    probe: Probe | None = getattr(module, "_lvsal_probe", None)
    layer = getattr(module, "layer_idx", None)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    n_rep = query.shape[1] // key.shape[1]
    q_len, kv_len = query.shape[-2], key.shape[-2]

    bias = (
        None
        if probe is None or layer is None
        else probe.bias_for(layer, q_len, kv_len, query.device, query.dtype)
    )
    if probe is not None and probe.mode == "step" and layer is not None and layer >= probe.lowest:
        return _step_attention(probe, layer, query, key, value, attention_mask, scale, bias)
    capture = probe is not None and probe.mode == "sequence" and layer in probe.layers
    isolate = probe is not None and probe.mode == "sequence" and layer is not None and layer > probe.lowest

    if not (capture or isolate):
        # The fast path: SDPA with the boolean mask (or is_causal), GQA without copies.
        mask = attention_mask
        if bias is not None:
            mask = probe.additive_mask(bias, mask, q_len, kv_len, query)
        is_causal = mask is None and q_len > 1 and getattr(module, "is_causal", True)
        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=mask,
            dropout_p=dropout,
            scale=scale,
            is_causal=is_causal,
            enable_gqa=n_rep > 1,
        )
        return out.transpose(1, 2).contiguous(), None

    k, v = _repeat_kv(key, n_rep), _repeat_kv(value, n_rep)

    if isolate:
        # Other positions' keys/values detached, the own key/value live: no gradient crosses positions.
        kd, vd = k.detach(), v.detach()
        own = torch.arange(kv_len - q_len, kv_len, device=query.device)
        k_own = k[:, :, own]  # [b, h, q, d]
        scores = torch.matmul(query, kd.transpose(-1, -2)) * scale
        diag = (query * (k_own - k_own.detach())).sum(-1) * scale  # zero in value, own-key gradient
        scores = scores + _place_diag(diag, own, kv_len)
    else:
        scores = torch.matmul(query, k.transpose(-1, -2)) * scale
    mask = probe.additive_mask(bias, attention_mask, q_len, kv_len, query)
    if mask is not None:
        scores = scores + mask
    attn = torch.softmax(scores, dim=-1, dtype=_softmax_dtype(query.dtype)).to(query.dtype)
    if capture:
        if layer == probe.lowest:
            attn = attn.detach().requires_grad_(True)  # the leaf: nothing below needs a graph
        probe.captured[layer] = attn
    if isolate:
        v_own = v[:, :, own]
        a_own = attn.gather(-1, own.view(1, 1, -1, 1).expand(*attn.shape[:-1], 1))  # [b, h, q, 1]
        out = torch.matmul(attn, vd) + a_own * (v_own - v_own.detach())
    else:
        out = torch.matmul(attn, v)
    return out.transpose(1, 2).contiguous(), None


def _step_attention(
    probe: Probe,
    layer: int,
    query: torch.Tensor,  # [1, h, 1, d]
    key: torch.Tensor,  # [1, h_kv, kv, d] from the StepCache: detached, own key last (or at probe.own)
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scale: float,
    bias: torch.Tensor | None,
) -> tuple[torch.Tensor, None]:
    """Attention of a step forward (one token over a detached cache), from the lowest target layer
    up (the layers below need no graph and take the fast path).

    The token's own key/value (probe.live) is added back live, as the isolated sequence pass does for
    every position; everything else is a constant.
    """
    n_rep = query.shape[1] // key.shape[1]
    kv_len = key.shape[-2]
    mask = probe.additive_mask(bias, attention_mask, 1, kv_len, query)
    k, v = _repeat_kv(key, n_rep), _repeat_kv(value, n_rep)
    scores = ConstMatmul.apply(query, k.transpose(-1, -2)) * scale  # [1, h, 1, kv]
    live_k, live_v = (_repeat_kv(t, n_rep) for t in probe.live[layer])  # [1, h, 1, d]
    if layer > probe.lowest:  # zero in value; the gradient path into the own key
        diag = (query * (live_k - live_k.detach())).sum(-1, keepdim=True) * scale  # [1, h, 1, 1]
        scores = scores + (F.pad(diag, (kv_len - 1, 0)) if probe.own is None else diag * probe.own)
    if mask is not None:
        scores = scores + mask
    attn = torch.softmax(scores, dim=-1, dtype=_softmax_dtype(query.dtype)).to(query.dtype)
    if layer in probe.layers:
        if layer == probe.lowest:
            attn = attn.detach().requires_grad_(True)  # the leaf: nothing below needs a graph
        probe.captured[layer] = attn
    out = ConstMatmul.apply(attn, v)  # [1, h, 1, d]
    if layer > probe.lowest:
        a_own = attn[..., -1:] if probe.own is None else (attn * probe.own).sum(-1, keepdim=True)
        out = out + a_own * (live_v - live_v.detach())
    return out.transpose(1, 2).contiguous(), None


def _additive(mask: torch.Tensor | None, q_len: int, kv_len: int, like: torch.Tensor) -> torch.Tensor:
    """The mask as an additive float tensor; None means causal, bottom-right aligned (KV cache)."""
    if mask is None:  # 4-D like transformers' masks: SDPA's fused kernels expect [b, h, q, kv]
        mask = torch.ones(1, 1, q_len, kv_len, dtype=torch.bool, device=like.device).tril(kv_len - q_len)
    if mask.dtype != torch.bool:
        return mask
    return mask_zeros(mask.shape, like.dtype, like.device).masked_fill_(~mask, torch.finfo(like.dtype).min)


def mask_zeros(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """Zeros of `shape` whose rows start at multiples of MASK_ALIGN elements (a view of a wider buffer):
    SDPA takes such a mask as it is instead of padding a copy per layer."""
    *lead, kv = shape
    return torch.zeros((*lead, aligned_len(kv)), dtype=dtype, device=device)[..., :kv]


def aligned_len(n: int) -> int:
    """n rounded up to a multiple of MASK_ALIGN."""
    return -(-n // MASK_ALIGN) * MASK_ALIGN


def _place_diag(diag: torch.Tensor, own: torch.Tensor, kv_len: int) -> torch.Tensor:
    """[b, h, q] values at (i, own[i]) of a zero [b, h, q, kv] tensor (differentiable)."""
    onehot = F.one_hot(own, kv_len).to(diag.dtype)  # [q, kv]
    return diag.unsqueeze(-1) * onehot


def register() -> None:
    """Register "lvsal" with transformers' attention and attention-mask interfaces (idempotent)."""
    global _registered
    with _REGISTER_LOCK:
        if _registered:
            return
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(NAME, lvsal_attention)
        # Without a mask function of the same name the causal mask is silently dropped. SDPA's mask:
        # boolean, or None where plain causal attention is exact (lvsal_attention rebuilds it then).
        AttentionMaskInterface.register(NAME, sdpa_mask)
        _registered = True


def attention_modules(language_model: nn.Module) -> list[nn.Module]:
    """The decoder's self-attention modules, indexed by layer (each has `layer_idx`)."""
    mods = [
        m
        for m in language_model.modules()
        if isinstance(getattr(m, "layer_idx", None), int) and hasattr(m, "q_proj")
    ]
    mods.sort(key=lambda m: m.layer_idx)
    if not mods:
        raise UnsupportedModelError(
            f"{type(language_model).__name__} has no attention modules with `layer_idx`/`q_proj`; "
            "lvsal-nb supports decoders built on transformers' AttentionInterface (Llama, Qwen2 ...)"
        )
    return mods


@contextlib.contextmanager
def attached(
    model: nn.Module, language_model: nn.Module, text_config, probe: Probe, what: str = "this call"
) -> Iterator[Probe]:
    """Install the probe on `model` for the duration of the block; restore everything after.

    Holds the model's lock (model_lock.holding: another thread waits, then gets ModelBusyError), so
    no other trace / analysis / locore block can interleave its own patching and restoring. Restores:
    the text config's attention implementation, each module's probe slot, every parameter's
    `requires_grad` (parameters never need gradients while tracing), train/eval mode and any
    `rope_deltas` kept on a module (Qwen2-VL). Ctrl-C is deferred while patching and restoring.
    """
    register()
    if not getattr(model, "_can_set_attn_implementation", lambda: True)():
        raise UnsupportedModelError(
            f"{type(model).__name__} does not dispatch attention through AttentionInterface, so the "
            "saliency probe cannot be installed; use a model class from transformers >= 5"
        )
    mods = attention_modules(language_model)
    with holding(model, what):
        with no_sigint():
            saved = _save_state(model, mods, text_config)
            try:
                text_config._attn_implementation_internal = NAME
                for m in mods:
                    m._lvsal_probe = probe
                for p in model.parameters():
                    p.requires_grad_(False)
                model.eval()
            except BaseException:
                _restore_state(model, mods, text_config, saved)
                raise
        try:
            yield probe
        finally:
            with no_sigint():
                _restore_state(model, mods, text_config, saved)
                probe._clear()


def _save_state(model: nn.Module, mods: list[nn.Module], text_config) -> dict:
    return {
        "impl": text_config._attn_implementation,
        "slots": [getattr(m, "_lvsal_probe", None) for m in mods],
        "grad": [p.requires_grad for p in model.parameters()],
        "training": model.training,
        "rope_deltas": [(m, m.rope_deltas) for m in model.modules() if hasattr(m, "rope_deltas")],
    }


def _restore_state(model: nn.Module, mods: list[nn.Module], text_config, saved: dict) -> None:
    text_config._attn_implementation_internal = saved["impl"]
    for m, slot in zip(mods, saved["slots"]):
        if slot is None:
            if hasattr(m, "_lvsal_probe"):
                del m._lvsal_probe
        else:
            m._lvsal_probe = slot
    for p, g in zip(model.parameters(), saved["grad"]):
        p.requires_grad_(g)
    model.train(saved["training"])
    for m, value in saved["rope_deltas"]:
        m.rope_deltas = value
