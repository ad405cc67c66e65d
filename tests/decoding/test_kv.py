"""GrowingCache: the same keys/values as transformers' concatenating DynamicCache, grown in place."""

import copy

import torch
from transformers import DynamicCache, LlamaConfig

from lvsal_nb.cache import MIN_CAPACITY, GrowingCache, GrowingLayer

CFG = LlamaConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, vocab_size=10)


def _kv(s, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 2, s, 8, generator=g), torch.randn(1, 2, s, 8, generator=g)


def test_equals_dynamic_cache_across_growth():
    grow, ref = GrowingCache(CFG), DynamicCache(config=CFG)
    assert all(isinstance(layer, GrowingLayer) for layer in grow.layers)
    sizes = [5] + [1] * (MIN_CAPACITY + 10) + [7]  # crosses two capacity doublings
    for i, s in enumerate(sizes):
        for layer in range(2):
            k, v = _kv(s, 100 * i + layer)
            a, b = grow.update(k, v, layer), ref.update(k, v, layer)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    buf = grow.layers[0]._kbuf
    assert grow.layers[0].keys.data_ptr() == buf.data_ptr() and buf.shape[-2] == 2 * MIN_CAPACITY
    assert grow.get_seq_length() == ref.get_seq_length() == sum(sizes)


def test_crop_deepcopy_and_graph_updates_stay_correct():
    grow, ref = GrowingCache(CFG), DynamicCache(config=CFG)
    for i in range(4):
        k, v = _kv(3, i)
        grow.update(k, v, 0), ref.update(k, v, 0)
    grow.crop(-2), ref.crop(-2)
    twin = copy.deepcopy(grow)
    k, v = _kv(1, 9)
    a, b = grow.update(k, v, 0), ref.update(k, v, 0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert twin.get_seq_length() == 10 and not torch.equal(twin.layers[0].keys[..., -1, :], k[..., 0, :])
    live = k.clone().requires_grad_(True)  # a differentiable update is concatenated, not written in place
    keys, _ = grow.update(live, v, 0)
    keys.sum().backward()
    assert torch.equal(live.grad, torch.ones_like(live))


def test_snapshot_is_exact_size_and_independent():
    from lvsal_nb.cache import snapshot

    grow = GrowingCache(CFG)
    for layer in range(2):
        grow.update(*_kv(5, layer), layer)
    snap = snapshot(grow, CFG)
    assert type(snap) is DynamicCache and snap.get_seq_length() == 5
    for a, b in zip(grow.layers, snap.layers):
        assert torch.equal(a.keys, b.keys) and b.keys.shape[-2] == 5
    grow.update(*_kv(1, 7), 0)  # the source grows in place: the snapshot keeps its own copy
    assert snap.get_seq_length() == 5 and grow.get_seq_length() == 6
