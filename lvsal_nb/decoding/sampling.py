"""Token choice for plain decoding: greedy or seeded temperature / top-p sampling."""

from __future__ import annotations

import torch

from ..errors import ConfigError

DECODINGS = ("greedy", "sample")


def check_sampling(decoding: str, temperature: float, top_p: float) -> None:
    if decoding not in DECODINGS:
        raise ConfigError(
            f"decoding must be one of {DECODINGS}, got {decoding!r} "
            "(beam search and other strategies: pass generate keywords, e.g. num_beams=3)"
        )
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


def choose(
    logits: torch.Tensor,
    decoding: str,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> int:
    """Pick the next token from logits [vocab]."""
    if decoding == "greedy":
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)  # CPU: the generator is a CPU one
    if top_p < 1.0:
        sp, si = torch.sort(probs, descending=True)
        keep = (sp.cumsum(0) - sp) < top_p  # the smallest prefix whose mass reaches top_p
        probs = torch.zeros_like(probs).scatter(0, si[keep], sp[keep])
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
