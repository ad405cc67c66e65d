"""SGRS — saliency-guided rejection sampling (PAPER.md, Algorithm 1), as a pure policy.

All K candidates are scored in one batched backward before the policy runs; the draws are then
simulated from those scores, which gives the same outcome distribution as scoring each draw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from ..errors import ConfigError
from .sampling import is_number


@dataclass(frozen=True)
class SGRS:
    """SGRS settings (official defaults). `order`: "sample" draws from the renormalised remaining
    top-K; "greedy" takes the most probable remaining candidate (deterministic comparisons)."""

    k: int = 5
    alpha: float = 0.6
    window: int = 5
    rounds: int = 3
    order: str = "sample"

    def __post_init__(self):
        if not _is_int(self.k) or self.k < 1:
            raise ConfigError(f"SGRS k must be an integer >= 1, got {self.k!r}")
        if not is_number(self.alpha) or not 0 <= self.alpha < math.inf:
            raise ConfigError(f"SGRS alpha must be >= 0 and finite (official: 0.6), got {self.alpha!r}")
        if not _is_int(self.window) or self.window < 1:
            raise ConfigError(f"SGRS window must be an integer >= 1, got {self.window!r}")
        if not _is_int(self.rounds) or not 1 <= self.rounds <= self.k:
            raise ConfigError(f"SGRS rounds must be an integer in 1..k={self.k}, got {self.rounds!r}")
        if self.order not in ("sample", "greedy"):
            raise ConfigError(f"SGRS order must be 'sample' or 'greedy', got {self.order!r}")

    def to_dict(self) -> dict:
        """The settings as a plain dict (the Trace's config["sgrs"])."""
        return asdict(self)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass
class Decision:
    """The policy's outcome. `chosen` indexes the candidate list; `tried[i]` = (candidate, round)."""

    chosen: int
    tau: float
    decision: str  # "accepted" | "fallback"
    round: int | None  # round of acceptance; None for a fallback
    tried: list[tuple[int, int]] = field(default_factory=list)


def threshold(cfg: SGRS, history: list[float]) -> float:
    """τ = α · mean of the last W accepted saliencies; 0 while the history is empty."""
    recent = history[-cfg.window :]
    return cfg.alpha * sum(recent) / len(recent) if recent else 0.0


def choose(
    cfg: SGRS,
    probs: list[float],
    saliency: list[float],
    history: list[float],
    generator: torch.Generator | None = None,
) -> Decision:
    """Run Algorithm 1 on K scored candidates (probs: model probabilities of the top-K, best first).

    A NaN saliency (no context yet) passes any threshold. The caller pushes the chosen candidate's
    saliency to `history` (the fallback's too).
    """
    if len(probs) != len(saliency) or not probs:
        raise ConfigError("probs and saliency must be non-empty and of equal length")
    tau = threshold(cfg, history)
    remaining = list(range(len(probs)))
    tried: list[tuple[int, int]] = []
    for r in range(min(cfg.rounds, len(probs))):
        if cfg.order == "greedy":
            c = max(remaining, key=lambda i: probs[i])
        else:
            p = torch.tensor([probs[i] for i in remaining], dtype=torch.float64)
            c = remaining[int(torch.multinomial(p / p.sum(), 1, generator=generator))]
        tried.append((c, r))
        s = saliency[c]
        if math.isnan(s) or s >= tau:
            return Decision(chosen=c, tau=tau, decision="accepted", round=r, tried=tried)
        remaining.remove(c)
    best = max(range(len(probs)), key=lambda i: -math.inf if math.isnan(saliency[i]) else saliency[i])
    return Decision(chosen=best, tau=tau, decision="fallback", round=None, tried=tried)
