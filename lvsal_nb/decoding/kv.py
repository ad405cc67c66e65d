"""A KV cache for the own decoding loop that grows in place.

transformers' DynamicLayer concatenates the whole cache on every token (O(T) copying per step, ~8% of
a CPU decode step at 840 positions). `GrowingCache` writes each new key/value into a buffer whose
capacity doubles, and hands out prefix views. Updates that carry a graph (the sequence engine's
isolated pass) take the plain concatenating path, so nothing differentiable is written in place.
"""

from __future__ import annotations

import copy

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

MIN_CAPACITY = 64


class GrowingLayer(DynamicLayer):
    """A DynamicLayer whose `keys`/`values` are prefix views of preallocated buffers."""

    _kbuf: torch.Tensor | None = None
    _vbuf: torch.Tensor | None = None

    def update(self, key_states, value_states, *args, **kwargs):
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
