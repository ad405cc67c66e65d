"""OPERA (Huang et al. 2024, "OPERA: Alleviating Hallucination in Multi-Modal Large Language Models
via Over-Trust Penalty and Retrospection-Allocation") — its per-step rules, as its released code.

Ported from ``opera_beam_search`` in OPERA's transformers fork (github.com/shikiw/OPERA,
transformers-4.29.2/src/transformers/generation/utils.py). Per beam and step, for each of the top
``num_attn_candidates`` tokens c (by logit):

1. attention square: the last layer's attention, max over heads, rows = positions so far plus c's
   row (from a forward with c appended); one zero column is padded for c; rows renormalised;
2. local window: rows and columns from the response start, scaled by ``scale_factor``;
3. over-trust score of column j: 1e-7 · Π_{i ≥ j} local[i, j] (the column-wise product of the
   rows at and below it), stored in **float16** as the released code does (small products
   underflow there);
4. penalty: while the response (with c) is at most 10 tokens, −(c's attention on the image
   tokens); after that, the largest column score; the candidate's logit −= penalty_weights · penalty;
5. retrospection: the column of the largest score is the candidate's rollback location; per beam
   the most common one over candidates (``torch.mode``: the smallest on ties), then over beams;
   kept per step in a history. When EVERY beam's history holds that location more than
   ``threshold`` times and it is ≥ 10, the code rolls back to the step after it and forbids the
   tokens chosen there (at most ``num_attn_candidates`` times per position).

Every other token's logit is set to −999 before the beam step (log-softmax, beam search with
``num_beams``). Defaults = the released code's: 5 beams, scale_factor 50, threshold 15,
5 candidates, penalty_weights 1, window_size 512.

Status: the rules above are implemented and tested here as functions of the attention pattern;
the beam-search decode loop that drives them on a model is not written yet, so OPERA is not in
the methods registry (lvsal_nb.methods).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..errors import ConfigError

__all__ = ["OPERA", "attention_square", "over_trust_scores", "candidate_penalty", "rollback_location",
           "rollback_due", "rescore"]  # fmt: skip


@dataclass(frozen=True)
class OPERA:
    """OPERA settings (defaults = its released code's ``opera_decoding`` call).

    num_beams: beams (5); scale_factor: σ scaling the local attention (50); threshold: how many
    times a rollback location must recur in every beam's history before retrospection (15);
    num_attn_candidates: top tokens re-scored per beam (5); penalty_weights: weight of the
    penalty on the logits (1); window_size: history length and rollback budget (512).
    """

    num_beams: int = 5
    scale_factor: float = 50.0
    threshold: int = 15
    num_attn_candidates: int = 5
    penalty_weights: float = 1.0
    window_size: int = 512

    def __post_init__(self):
        for name in ("num_beams", "num_attn_candidates", "window_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"OPERA {name} must be an integer >= 1, got {v!r}")
        if not isinstance(self.threshold, int) or self.threshold < 0:
            raise ConfigError(f"OPERA threshold must be an integer >= 0, got {self.threshold!r}")
        if not self.scale_factor > 0:
            raise ConfigError(f"OPERA scale_factor must be > 0, got {self.scale_factor!r}")
        if not self.penalty_weights >= 0:
            raise ConfigError(f"OPERA penalty_weights must be >= 0, got {self.penalty_weights!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def attention_square(previous: torch.Tensor, candidate_row: torch.Tensor) -> torch.Tensor:
    """[q, kv] head-max attention rows so far + the candidate's row [kv + 1] -> [q + 1, kv + 1],
    previous rows padded with a zero column, every row renormalised to sum 1 (the code's attn_last)."""
    if previous.shape[-1] + 1 != candidate_row.shape[-1]:
        raise ConfigError(
            f"the candidate's attention row has {candidate_row.shape[-1]} keys, expected "
            f"{previous.shape[-1] + 1} (the previous rows' keys + the candidate itself)"
        )
    padded = torch.cat([previous, previous.new_zeros(previous.shape[0], 1)], -1)
    square = torch.cat([padded, candidate_row[None]], 0)
    return square / square.sum(-1, keepdim=True)


def over_trust_scores(square: torch.Tensor, response_start: int, scale_factor: float = 50.0) -> torch.Tensor:
    """Column scores [n] of the local window square[response_start:, response_start:] (n × n):
    1e-7 · Π_{i ≥ j} (scale_factor · local[i, j]), rounded through float16 as the released code."""
    local = scale_factor * square[response_start:, response_start:]
    n = local.shape[-1]
    out = torch.zeros(n, dtype=torch.float16)
    for j in range(n):
        out[j] = (1e-7 * local[j:, j].prod(-1)).to(torch.float32)
    return out.to(torch.float32)


def candidate_penalty(
    square: torch.Tensor, response_start: int, image_span: tuple[int, int], scale_factor: float = 50.0
) -> tuple[float, int]:
    """(penalty, rollback location) of one candidate from its attention square.

    Penalty: −Σ of the candidate row's attention on the image tokens ``[image_span[0], image_span[1])``
    while the local window is at most 10 tokens wide, else the largest over-trust score.
    Rollback location: the column of the largest score (the first on ties, as ``max``).
    """
    scores = over_trust_scores(square, response_start, scale_factor)
    best, loc = scores.max(-1)
    if scores.shape[-1] <= 10:
        return -float(square[-1, image_span[0] : image_span[1]].sum()), int(loc)
    return float(best), int(loc)


def rollback_location(locs: torch.Tensor) -> tuple[torch.Tensor, int]:
    """locs [beams, candidates] -> (per-beam mode [beams], the mode of those over beams), as torch.mode."""
    per_beam = locs.mode(-1).values
    return per_beam, int(per_beam.mode().values)


def rollback_due(history: Sequence[Sequence[int]], loc: int, threshold: int) -> bool:
    """The released code's test: every beam's history [beams][steps] holds ``loc`` more than
    ``threshold`` times, and ``loc`` is at least 10 (no retrospection into the first 10 tokens)."""
    return loc >= 10 and all(sum(int(h == loc) for h in beam) > threshold for beam in history)


def rescore(
    logits: torch.Tensor, candidates: torch.Tensor, penalties: torch.Tensor, penalty_weights: float = 1.0
) -> torch.Tensor:
    """logits [beams, vocab] -> every token −999 except the candidates [beams, C], which keep their
    logit − penalty_weights · penalty [beams, C] (the input of the beam step's log-softmax)."""
    out = torch.full_like(logits, -999.0)
    return out.scatter(-1, candidates, logits.gather(-1, candidates) - penalty_weights * penalties)
