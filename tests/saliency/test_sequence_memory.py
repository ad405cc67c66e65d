"""The sequence engine's memory is bounded by the chunk: what autograd holds for the backward (the
activation memory of the pass) grows with the chunk, not with the length of the output, apart from
the keys/values that any decoding keeps."""

import weakref

import torch

from .test_reference_equality import LAYERS, PROMPT


class _Held:
    __slots__ = ("t", "__weakref__")

    def __init__(self, t):
        self.t = t


def _peak_saved_bytes(fn, exclude: set[int]) -> int:
    """Peak bytes of the distinct storages that autograd graphs hold at once while fn runs (saved
    tensor hooks; a storage is released when the last graph holding it is freed)."""
    held: dict[int, int] = {}
    state = {"now": 0, "peak": 0}

    def release(ptr, nbytes):
        held[ptr] -= 1
        if not held[ptr]:
            del held[ptr]
            state["now"] -= nbytes

    def pack(t):
        h = _Held(t)
        ptr = t.untyped_storage().data_ptr()
        if ptr in exclude or ptr == 0:
            return h
        nbytes = t.untyped_storage().nbytes()
        if ptr not in held:
            held[ptr] = 0
            state["now"] += nbytes
            state["peak"] = max(state["peak"], state["now"])
        held[ptr] += 1
        weakref.finalize(h, release, ptr, nbytes)
        return h

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda h: h.t):
        fn()
    return state["peak"]


def test_saved_memory_grows_with_the_chunk_not_the_output(llava_session, image):
    s = llava_session
    params = {p.untyped_storage().data_ptr() for p in s.model.parameters()}  # weights: not new memory
    ids = [5 + (i * 7) % 35 for i in range(64)]
    peak = {}
    for t in (32, 64):
        for c in (4, None):
            run = lambda t=t, c=c: s.analyze(image, PROMPT, ids[:t], chunk=c, layers=LAYERS)  # noqa: E731
            peak[t, c] = _peak_saved_bytes(run, params)
    grow = {c: peak[64, c] - peak[32, c] for c in (4, None)}  # the cost of 32 more output tokens
    assert grow[None] > 0.8 * peak[32, None]  # one pass over everything: about proportional
    assert grow[4] < grow[None] / 5  # chunks of 4: only the keys/values the chunks attend to grow
    assert peak[64, 4] < peak[64, None] / 3
