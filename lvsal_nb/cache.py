"""Every KV cache the engines and the decode loop use, and how they are filled: one low module.

- `GrowingCache`: the decode loop's cache. transformers' DynamicLayer concatenates the whole cache on
  every token (O(T) copying per step, ~8% of a CPU decode step at 840 positions); GrowingLayer writes
  each new key/value into a buffer whose capacity doubles and hands out prefix views. Updates that
  carry a graph (the sequence engine's isolated pass) take the plain concatenating path, so nothing
  differentiable is written in place.
- `StepCache` / `StaticStepCache`: the step engine's (growing / fixed-capacity) caches that hold no
  graph and hand the new token's live key/value to the probe.
- `prefill`: positions [0, n-1) of a prompt into any of them; `snapshot`, `rewind_cache`,
  `detach_cache`: what the sequence engine does with a copy of the prompt's cache.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from .models.base import PER_POSITION_KEYS

if TYPE_CHECKING:
    from .context import TraceContext
    from .saliency.probe import Probe

MIN_CAPACITY = 64


class GrowingLayer(DynamicLayer):
    """A DynamicLayer whose `keys`/`values` are prefix views of preallocated buffers."""

    _kbuf: torch.Tensor | None = None
    _vbuf: torch.Tensor | None = None

    def update(self, key_states, value_states, *args, **kwargs):
        """Append key/value [b, h_kv, s, d]; returns the layer's keys/values so far (prefix views)."""
        if key_states.requires_grad or value_states.requires_grad:
            return super().update(key_states, value_states, *args, **kwargs)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = self.keys.shape[-2] if self.keys.dim() == 4 else 0
        s = key_states.shape[-2]
        if not (self._owns(self.keys, self._kbuf) and self._owns(self.values, self._vbuf)):
            self._kbuf = self._vbuf = None  # keys were replaced (crop, batch select, deepcopy ...)
        if self._kbuf is None or n + s > self._kbuf.shape[-2]:
            self._kbuf = _grown(self.keys if n else None, key_states, n + s)
            self._vbuf = _grown(self.values if n else None, value_states, n + s)
        self._kbuf[..., n : n + s, :].copy_(key_states)
        self._vbuf[..., n : n + s, :].copy_(value_states)
        self.keys, self.values = self._kbuf[..., : n + s, :], self._vbuf[..., : n + s, :]
        return self.keys, self.values

    @staticmethod
    def _owns(view: torch.Tensor, buf: torch.Tensor | None) -> bool:
        return (
            buf is not None
            and view.dim() == 4
            and view.data_ptr() == buf.data_ptr()
            and view.stride() == buf.stride()
            and view.shape[:-2] == buf.shape[:-2]
        )


def _grown(old: torch.Tensor | None, like: torch.Tensor, need: int) -> torch.Tensor:
    cap = max(MIN_CAPACITY, 1 << (need - 1).bit_length())
    buf = like.new_empty((*like.shape[:-2], cap, like.shape[-1]))
    if old is not None:
        buf[..., : old.shape[-2], :].copy_(old)
    return buf


class GrowingCache(DynamicCache):
    """DynamicCache(config) with its full-attention layers growing in place (GrowingLayer)."""

    def __init__(self, config):
        super().__init__(config=config)
        if self.layer_class_to_replicate is DynamicLayer:
            self.layer_class_to_replicate = GrowingLayer
        self.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in self.layers]


def snapshot(cache: DynamicCache, config) -> DynamicCache:
    """A plain DynamicCache holding exact-size copies of `cache`'s keys/values (no spare capacity);
    caches with other layer kinds (sliding windows ...) are deep-copied as they are."""
    if any(type(layer) not in (DynamicLayer, GrowingLayer) for layer in cache.layers):
        return copy.deepcopy(cache)
    out = DynamicCache(config=config)
    for i, layer in enumerate(cache.layers):
        if getattr(layer, "is_initialized", False) and layer.keys.dim() == 4:
            out.update(layer.keys.clone(), layer.values.clone(), i)
    return out


class StepCache(GrowingCache):
    """A cache that holds no graph: in probe mode "step" it stores the new token's key/value
    detached and hands the live ones to the probe (`probe.live[layer]`), whose attention adds their
    gradient path back for the token's own column only."""

    def __init__(self, config, probe: Probe):
        super().__init__(config)
        self.probe = probe

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        """Store the step's key/value [1, h_kv, s, d] (detached when the probe keeps the live ones)."""
        if self.probe.hand_live(layer_idx, key_states, value_states):
            key_states, value_states = key_states.detach(), value_states.detach()
        return super().update(key_states, value_states, layer_idx, *args, **kwargs)


class StaticStepCache(DynamicCache):
    """Keys/values [1, h_kv, capacity, d] per layer; `update` writes the step's key/value (detached)
    at `pos` and returns the whole buffers; the live ones go to the probe, as in StepCache."""

    def __init__(self, config, probe: Probe, keys: list[torch.Tensor], values: list[torch.Tensor], pos):
        super().__init__(config=config)
        self.probe, self.kbuf, self.vbuf, self.pos = probe, keys, values, pos

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        """Write the step's key/value [1, h_kv, 1, d] (detached) at `pos`; returns the whole buffers."""
        self.probe.hand_live(layer_idx, key_states, value_states)
        self.kbuf[layer_idx].index_copy_(2, self.pos, key_states.detach())
        self.vbuf[layer_idx].index_copy_(2, self.pos, value_states.detach())
        return self.kbuf[layer_idx], self.vbuf[layer_idx]


def prefill(ctx: TraceContext, cache) -> None:
    """Fill `cache` with positions [0, n-1) of the prompt (image included), without grad."""
    n, adapter = ctx.n, ctx.adapter
    if n < 2:
        raise ValueError("a prompt of at least two tokens is needed")
    pre = {k: (v[:, : n - 1] if k in PER_POSITION_KEYS else v) for k, v in ctx.inputs.items()}
    adapter.new_sequence()
    with ctx.probe.forward("off"), torch.no_grad():
        adapter.model(**pre, **{adapter.cache_kw: cache}, use_cache=True, logits_to_keep=1)


def rewind_cache(cache, length: int) -> None:
    """Cut every layer of a transformers Cache back to its first `length` positions (a no-op when it
    holds exactly that many), without graph."""
    for layer in getattr(cache, "layers", []):
        keys = getattr(layer, "keys", None)
        if getattr(layer, "is_initialized", False) and isinstance(keys, torch.Tensor) and keys.dim() == 4:
            if keys.shape[-2] > length:
                if type(layer) not in (DynamicLayer, GrowingLayer):
                    raise RuntimeError(f"cannot rewind a {type(layer).__name__} cache layer")
                layer.keys = layer.keys[..., :length, :].detach()
                layer.values = layer.values[..., :length, :].detach()


def detach_cache(cache) -> None:
    """Cut the graph out of a transformers Cache after a chunk's grad-enabled pass (keeps values)."""
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor) and t.requires_grad:
                setattr(layer, name, t.detach())
