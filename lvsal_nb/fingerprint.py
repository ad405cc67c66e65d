"""Content fingerprints of a generation, so marks find their tokens again after a rerun.

Every run gets a random `trace_id` (the instance id: which run this was). Marks are also keyed to
what was generated, from content alone:

- `setup_key(trace)`: model id + weights digest, image digest, prompt. What a token's label
  ("hallucinated": not in the image) depends on besides the text before it.
- `step_keys(trace)`: one key per step t, from the setup key and the output token ids 0..t. Two
  steps with equal keys are the same token after the same text for the same model, image and
  prompt, so a mark made on one holds for the other, whatever the decoding settings that led there.
- `content_fingerprint(trace)`: setup key + decoding settings + all output token ids: equal for
  exactly the same generation (a rerun with the same settings and the same tokens).

Keys are SHA-256 hex digests (first 32 characters) of canonical JSON. A trace without a recorded
weights digest (a trace from `Session.trace`, or an older file) is keyed by its model id alone.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any

# Trace.config keys that are decoding settings (they change which tokens come out, not what a
# given token after a given prefix means).
DECODING_KEYS = ("decoding", "sgrs", "locore", "seed", "generate", "max_new_tokens", "alternatives")
KEY_CHARS = 32


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_CHARS]


def output_ids(trace) -> list[int]:
    """The generated token ids of a trace, step 0 first."""
    return [int(s.token_id) for s in trace.records]


def setup_key(trace) -> str:
    """Model id + weights digest, image digest and prompt of a trace (see the module docstring)."""
    cfg = trace.config or {}
    return _digest(
        {
            "model_id": cfg.get("model_id"),
            "weights": cfg.get("weights_digest"),
            "image": trace.image_digest,
            "prompt": trace.prompt,
        }
    )


def step_keys(trace) -> list[str]:
    """One key per step: the setup key and the output token ids up to and including that step.

    Incremental (each key hashes the previous key and the step's token id), so a 512-step trace
    costs 512 short hashes, and key t depends on exactly ids[0..t]."""
    keys, prev = [], setup_key(trace)
    for tid in output_ids(trace):
        prev = hashlib.sha256(f"{prev}:{tid}".encode()).hexdigest()[:KEY_CHARS]
        keys.append(prev)
    return keys


def content_fingerprint(trace) -> str:
    """Setup key + decoding settings + every output token id: equal for identical generations."""
    cfg = trace.config or {}
    settings = {k: cfg.get(k) for k in DECODING_KEYS}
    return _digest({"setup": setup_key(trace), "settings": settings, "tokens": output_ids(trace)})


_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_digest(model) -> str:
    """A digest of a torch model's parameters and buffers: names, shapes, dtypes and values.

    Cached per model object and recomputed when any tensor was modified in place (torch's version
    counters), so a fine-tuned or reloaded model gets another digest. Values enter as the float64
    sum and sum of squares of each tensor and a strided sample of up to 1024 of its elements: one
    pass over the weights, no copy to the host of more than a few KB per tensor."""
    import torch

    tensors = list(model.state_dict(keep_vars=True).items())
    versions = tuple(t._version for _n, t in tensors)
    hit = _WEIGHTS.get(model)
    if hit is not None and hit[0] == versions:
        return hit[1]
    h = hashlib.sha256()
    with torch.no_grad():
        for name, t in tensors:
            flat = t.detach().reshape(-1)
            stride = max(1, flat.numel() // 1024)
            sample = flat[::stride].to("cpu", torch.float64)
            f = flat.to(torch.float64) if flat.is_floating_point() else flat.double()
            stats = torch.stack([f.sum(), (f * f).sum()]).cpu()
            h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
            h.update(sample.numpy().tobytes())
            h.update(stats.numpy().tobytes())
    digest = h.hexdigest()[:KEY_CHARS]
    _WEIGHTS[model] = (versions, digest)
    return digest
