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

`opera_generate` drives them on a session's model, batch 1, with the beam bookkeeping of
transformers 4.29's BeamSearchScorer that the released code uses (length_penalty 1, no early stop:
a finished hypothesis scores its sum of log-probs / its length in tokens, prompt included).
Deliberate differences: the prompt is prefilled once (eager attention, to read the maps) and each
beam / candidate prefix runs incrementally on a copy of that KV cache, memoised by prefix (the
released code advances one cache per beam; the rows and logits are the same up to rounding); the
rollback replays the stored state instead of re-running the cached forwards. The released code's
quirks are kept: any failure inside the rollback branch (a too-short history, the retry budget
spent) silently falls back to the plain re-scored step, as its `try: ... except: ...` does.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..errors import ConfigError, ImageError

__all__ = ["OPERA", "attention_square", "over_trust_scores", "candidate_penalty", "rollback_location",
           "rollback_due", "rescore", "opera_generate"]  # fmt: skip


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
        """The settings as a JSON-ready dict (recorded in the Trace's config)."""
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


# ---- the decode loop ------------------------------------------------------------------------------
class _Hypotheses:
    """transformers 4.29's BeamHypotheses (length_penalty 1, early_stopping False), batch 1."""

    def __init__(self, num_beams: int):
        self.num_beams, self.beams, self.worst = num_beams, [], 1e9

    def add(self, tokens: list[int], sum_logprobs: float, eos: bool, length: int) -> None:
        score = sum_logprobs / length
        if len(self.beams) < self.num_beams or score > self.worst:
            self.beams.append((score, tokens, eos))
            if len(self.beams) > self.num_beams:
                ranked = sorted((s, k) for k, (s, _, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs: float, cur_len: int) -> bool:
        return len(self.beams) >= self.num_beams and self.worst >= best_sum_logprobs / cur_len

    def copy(self) -> _Hypotheses:
        h = _Hypotheses(self.num_beams)
        h.beams, h.worst = list(self.beams), self.worst
        return h


class _EagerAttention:
    """The language model's attention as the eager kernel while OPERA reads attention maps."""

    def __init__(self, config):
        self.config = config

    def __enter__(self):
        self.old = self.config._attn_implementation
        self.config._attn_implementation = "eager"

    def __exit__(self, *exc):
        self.config._attn_implementation = self.old


def opera_generate(
    session,
    image,
    prompt: str,
    cfg: OPERA | None = None,
    *,
    max_new_tokens: int = 64,
    return_scores: bool = False,
):
    """Decode one (image, prompt) with OPERA (beam search with the over-trust penalty and rollback).

    Args:
        session: an `lvsal_nb.Session` (batch 1).
        cfg: OPERA settings. Default: `OPERA()` (the released code's).
        max_new_tokens: at most this many tokens after the prompt.
        return_scores: keep, per beam step, the [num_beams, vocab] logits the step was taken from.

    Returns:
        Generated: the best hypothesis' tokens (EOS included when it ended with one); `info[t]`
        holds step t's rollback location, the per-beam penalties and whether it rolled back.
    """
    from .baselines import Generated, check_decoding, work_dtype

    cfg = cfg or OPERA()
    if not isinstance(cfg, OPERA):
        raise ConfigError("cfg must be an lvsal_nb.decoding.opera.OPERA(...) or None")
    check_decoding(max_new_tokens, "greedy", 1.0, 1.0)
    adapter = session.adapter
    prepared = adapter.prepare(image, prompt)
    if prepared.spans.image is None:
        raise ImageError("OPERA penalises the attention on the image tokens: pass an image")
    rs, img = prepared.spans.output[0], prepared.spans.image
    eos = set(adapter.eos_token_ids)
    B, C = cfg.num_beams, cfg.num_attn_candidates

    inputs = adapter.to(prepared.inputs, session.dtype)
    with torch.no_grad(), _EagerAttention(adapter.text_config):
        pre = adapter.model(**inputs, use_cache=True, output_attentions=True)
    prompt_rows = work_dtype(pre.attentions[-1][0]).max(0).values  # [rs, rs]
    memo = {(): (work_dtype(pre.logits[0, -1]), prompt_rows)}

    def forward(tokens: list[int]):
        """(logits [vocab] of the next token, last-layer attention max over heads [n, n]) of the prompt
        + tokens: the tokens run incrementally on a copy of the prompt's KV cache (memoised: a
        candidate's forward is the next step's beam forward)."""
        key = tuple(tokens)
        if key not in memo:
            n = rs + len(tokens)
            kw = adapter.step_inputs(torch.tensor([tokens], device=inputs["input_ids"].device), n)
            with torch.no_grad(), _EagerAttention(adapter.text_config):
                out = adapter.model(
                    **kw,
                    **{adapter.cache_kw: copy.deepcopy(pre.past_key_values)},
                    use_cache=True,
                    output_attentions=True,
                )
            rows = work_dtype(out.attentions[-1][0]).max(0).values  # [len(tokens), n]
            square = torch.cat([torch.nn.functional.pad(prompt_rows, (0, len(tokens))), rows], 0)
            memo[key] = (work_dtype(out.logits[0, -1]), square)
        return memo[key]

    beams: list[list[int]] = [[] for _ in range(B)]
    beam_scores = torch.zeros(B, dtype=torch.float64)
    beam_scores[1:] = -1e9  # transformers: only the first copy of the prompt starts a beam
    hyps = _Hypotheses(B)
    history: list[dict] = []
    history_locs: list[torch.Tensor] = []
    max_rollback = [0] * cfg.window_size
    rejected: list[list[int]] = [[] for _ in range(cfg.window_size)]
    beam_next = beam_idx = None
    info: list[dict] = []
    scores_out: list[torch.Tensor] = []
    max_len = rs + max_new_tokens
    while True:
        state = {"beams": [list(b) for b in beams], "hyps": hyps.copy()}
        outs = [forward(b) for b in beams]
        logits = torch.stack([o[0] for o in outs])  # [B, vocab]
        vocab = logits.shape[-1]
        cand_scores, cand = torch.topk(logits, C, dim=-1)
        state.update(
            cand=cand.clone(), beam_scores=beam_scores.clone(), beam_next=beam_next, beam_idx=beam_idx
        )
        pen = torch.zeros(B, C, dtype=logits.dtype)
        locs = torch.zeros(B, C, dtype=torch.long)
        for b in range(B):
            for c in range(C):
                sq = forward(beams[b] + [int(cand[b, c])])[1]
                sq = sq / sq.sum(-1, keepdim=True)
                pen[b, c], locs[b, c] = candidate_penalty(sq, rs, img, cfg.scale_factor)
        window = len(beams[0]) + 1  # the released code's cur_response_lens
        per_beam, loc = rollback_location(locs)
        history_locs.append(per_beam)
        cand_scores = cand_scores - cfg.penalty_weights * pen
        state["cand_scores"] = cand_scores.clone()
        if len(history) >= cfg.window_size:
            history.pop(0)
        history.append(state)
        step = _rollback(cfg, history, history_locs, max_rollback, rejected, loc, window, forward, vocab)
        rolled = step is not None
        if rolled:
            beams, hyps, beam_scores, next_logits = step
        else:
            next_logits = rescore(logits, cand, pen, cfg.penalty_weights)
        info.append({"rollback_location": loc, "penalties": pen.tolist(), "rolled_back": rolled})
        if return_scores:
            scores_out.append(next_logits.detach().cpu())
        # the beam step (transformers 4.29 beam_search + BeamSearchScorer.process, batch 1)
        logp = torch.log_softmax(next_logits, -1) + beam_scores[:, None]
        top, flat = torch.topk(logp.view(-1), 2 * B)
        new_beams, new_scores, new_next, new_idx = [], [], [], []
        cur_len = rs + len(beams[0])
        for rank, (sc, f) in enumerate(zip(top.tolist(), flat.tolist())):
            b, tok = divmod(f, vocab)
            if tok in eos:
                if rank < B:
                    hyps.add(list(beams[b]), sc, True, cur_len)
            else:
                new_beams.append(beams[b] + [tok])
                new_scores.append(sc)
                new_next.append(tok)
                new_idx.append(b)
            if len(new_beams) == B:
                break
        done = hyps.is_done(max(top.tolist()), cur_len)
        beams, beam_scores = new_beams, torch.tensor(new_scores, dtype=torch.float64)
        beam_next, beam_idx = torch.tensor(new_next), torch.tensor(new_idx)
        if done or rs + len(beams[0]) >= max_len:
            break
    if not done:
        for b in range(B):  # finalize: the open beams compete with the finished ones
            hyps.add(list(beams[b]), float(beam_scores[b]), False, rs + len(beams[b]))
    _, tokens, ended = max(hyps.beams, key=lambda h: h[0])
    out = list(tokens) + ([min(eos)] if ended else [])
    text = adapter.tokenizer.decode(out, skip_special_tokens=True)
    config = {"method": "opera", **cfg.to_dict(), "max_new_tokens": max_new_tokens}
    return Generated(
        token_ids=out, text=text, scores=scores_out if return_scores else None, info=info, config=config
    )


def _rollback(cfg, history, history_locs, max_rollback, rejected, loc, window, forward, vocab):
    """The released code's retrospection: None (no rollback: the re-scored step runs), or the
    restored (beams, hypotheses, beam scores, logits with the rejected tokens at -999)."""
    gathered = torch.stack(history_locs, -1)  # [beams, steps]
    if not all(int((row == loc).sum()) > cfg.threshold for row in gathered):
        return None
    try:
        if loc < 10:
            return None
        pos = loc + 1
        if max_rollback[pos] >= cfg.num_attn_candidates:
            pos -= 1
            if max_rollback[pos] >= cfg.num_attn_candidates:
                return None
        max_rollback[pos] += 1
        if window - pos > cfg.window_size + 1:
            pos = max(1, window - cfg.window_size - 1)
        for j in range(window - pos - 2):
            history.pop(-1)
            history_locs.pop(-1)
            rejected[-(j + 1)] = []
        back, last = history[-2], history[-1]
        beams, hyps, beam_scores = [list(b) for b in back["beams"]], back["hyps"].copy(), back["beam_scores"]
        beam_next, beam_idx = last["beam_next"], last["beam_idx"]
        if beam_next is None:
            raise IndexError("no step to reject")
        logits = torch.stack([forward(b)[0] for b in beams])
        history.pop(-1)
        history_locs.pop(-1)
        rejected[pos + 1] = []
        logits = logits - (999.0 + logits.min(-1, keepdim=True).values)
        flat = logits.reshape(-1)
        reject = (beam_idx * vocab + beam_next).tolist()
        rejected[pos] = rejected[pos] + reject if rejected[pos] else reject
        flat[torch.tensor(rejected[pos])] = -999.0
        return beams, hyps, beam_scores, flat.view(len(beams), vocab)
    except IndexError:  # the released code's bare `except:` falls back to the plain step
        return None
