"""Token choice for plain decoding: greedy or seeded temperature / top-p sampling."""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError

DECODINGS = ("greedy", "sample")


def check_sampling(decoding: str, temperature: float, top_p: float) -> None:
    """decoding in DECODINGS, 0 < temperature < inf, 0 < top_p <= 1; else ConfigError."""
    if decoding not in DECODINGS:
        raise ConfigError(
            f"decoding must be one of {DECODINGS}, got {decoding!r} "
            "(beam search and other strategies: pass generate keywords, e.g. num_beams=3)"
        )
    if not is_number(temperature) or not 0 < temperature < math.inf:
        raise ConfigError(f"temperature must be > 0 and finite, got {temperature!r}")
    if not is_number(top_p) or not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be a number in (0, 1], got {top_p!r}")


def is_number(x) -> bool:
    """A real number (int or float, not bool); NaN and inf included: callers check the range."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def choose(
    logits: torch.Tensor,
    decoding: str,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> int:
    """Pick the next token from logits [vocab]."""
    return choose_p(logits, decoding, temperature, top_p, generator)[0]


def choose_p(
    logits: torch.Tensor,
    decoding: str,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[int, float | None]:
    """(next token, its probability under the sampling distribution: softmax(logits / temperature)
    restricted to the top-p set and renormalised). The probability is None for greedy decoding (no
    distribution is sampled); the model's own probability is softmax(logits) at temperature 1."""
    if decoding == "greedy":
        return int(torch.argmax(logits)), None
    probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)  # CPU: the generator is a CPU one
    if top_p < 1.0:
        sp, si = torch.sort(probs, descending=True)
        keep = (sp.cumsum(0) - sp) < top_p  # the smallest prefix whose mass reaches top_p
        probs = torch.zeros_like(probs).scatter(0, si[keep], sp[keep])
    probs = probs / probs.sum()
    tok = int(torch.multinomial(probs, 1, generator=generator))
    return tok, float(probs[tok])
