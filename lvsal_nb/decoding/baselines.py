"""Shared machinery of the contrastive-decoding baselines (VCD in `vcd.py`, DoLa in `dola.py`).

transformers 5 moved DoLa (and never shipped VCD) out of the library, so both run on the project's
own KV-cache loop (`decoding.loop.StepLoop`): one token per forward, no full-prefix recompute,
driven by the one decode loop (`runs.decode`) with a contrastive policy.
Each baseline returns a `Generated` (token ids, text, optionally the contrasted scores per step);
`Session.analyze(image, prompt, generated.token_ids)` then gives its saliency like any other output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..context import TraceContext
from ..errors import ConfigError
from ..saliency.probe import Probe
from ..settings import RunRecord
from . import sampling
from .loop import StepLoop
from .runs import decode as run_decode


@dataclass
class Generated:
    """A baseline's output for one (image, prompt).

    Attributes:
        token_ids: generated ids, the EOS token included when one was produced (as `Session.trace`).
        text: the decoded output, special tokens dropped.
        scores: per step, the contrasted scores [vocab] the token was chosen from (float64 on a
            float64 model, else float32; -inf outside the plausible set); only with return_scores=True.
        info: per step, what the method decided (DoLa: the premature layer).
        config: the method's settings and the decoding (for records).
    """

    token_ids: list[int]
    text: str
    scores: list[torch.Tensor] | None = None
    info: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


class Stream(StepLoop):
    """A StepLoop over one prompt whose forward returns the whole model output (hidden states ...).

    Runs without grad and without the saliency probe: baselines only need logits.
    """

    def __init__(self, session, prepared, inputs: dict[str, torch.Tensor], **forward_kw):
        super().__init__(TraceContext(session.adapter, prepared, Probe(), inputs), grad=False)
        self.forward_kw = forward_kw

    def output(self):
        """Forward the pending token at q; the output's logits [1, 1, vocab] predict position q+1."""
        kw = self.adapter.step_inputs(self.pending, self.q + 1)
        with torch.no_grad():
            return self.adapter.model(
                **kw,
                **{self.adapter.cache_kw: self.cache},
                use_cache=True,
                logits_to_keep=1,
                **self.forward_kw,
            )


def work_dtype(logits: torch.Tensor) -> torch.Tensor:
    """Contrasts in float64 on a float64 model (exactness tests), else float32 (as DoLa's code)."""
    return logits.double() if logits.dtype == torch.float64 else logits.float()


def plausible(logits: torch.Tensor, beta: float) -> torch.Tensor:
    """Adaptive plausibility constraint: True where p ≥ β · max p (of softmax(logits) [vocab]).

    Computed on logits as `logit ≥ log β + max logit`, which is the same set (VCD's code, version 2).
    """
    return logits >= logits.max(-1, keepdim=True).values + torch.log(torch.tensor(beta, dtype=logits.dtype))


def repetition_penalty(scores: torch.Tensor, seen: list[int], penalty: float) -> torch.Tensor:
    """transformers' RepetitionPenaltyLogitsProcessor (CTRL): every id in `seen` (prompt and outputs)
    has its score divided by `penalty` when positive, multiplied when negative. scores: [vocab]."""
    if penalty == 1.0 or not seen:
        return scores
    idx = torch.tensor(sorted(set(seen)), device=scores.device)
    s = scores[idx]
    out = scores.clone()
    out[idx] = torch.where(s < 0, s * penalty, s / penalty)
    return out


def check_decoding(max_new_tokens: int, decoding: str, temperature: float, top_p: float) -> None:
    """Raise ConfigError unless max_new_tokens is an int >= 1 and the sampling settings are valid."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    sampling.check_sampling(decoding, temperature, top_p)


Contrast = Callable[[list[Any], list[int]], tuple[torch.Tensor, dict]]


class Streams:
    """The streams of one baseline decoded in lockstep, as one loop for `runs.decode`: prefill
    prefills them all, forward returns every stream's output, push feeds the token to all."""

    kind = "dynamic"
    capture_s = 0.0

    def __init__(self, streams: list[Stream]):
        self.streams = streams

    def prefill(self) -> None:
        """Prefill every stream's cache with its prompt."""
        for s in self.streams:
            s.prefill()

    def forward(self) -> list[Any]:
        """Every stream's model output for its pending token (logits [1, 1, vocab] ...)."""
        return [s.output() for s in self.streams]

    def push(self, token_id: int) -> None:
        """Feed the chosen token to every stream."""
        for s in self.streams:
            s.push(token_id)


class ContrastPolicy:
    """`runs.decode`'s policy for a baseline: `contrast(outputs, seen_ids)` turns the streams'
    outputs into scores [vocab] (+ info); the token is chosen greedily or by seeded sampling from
    softmax(scores / temperature) with top-p. `seen_ids` = prompt ids + tokens generated so far
    (what a repetition penalty looks at)."""

    def __init__(
        self, contrast: Contrast, seen: list[int], decoding, temperature, top_p, seed, return_scores
    ):
        self.contrast, self.seen = contrast, seen
        self.decoding, self.temperature, self.top_p = decoding, temperature, top_p
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.return_scores = return_scores
        self.out: list[int] = []
        self.scores: list[torch.Tensor] = []
        self.info: list[dict[str, Any]] = []

    def start(self, loop) -> None:
        """Nothing to set up."""

    def choose(self, t: int, outputs: list[Any]) -> int:
        """Contrast the outputs, keep the scores and info, choose the token."""
        scores, meta = self.contrast(outputs, self.seen)
        self.info.append(meta)
        if self.return_scores:
            self.scores.append(scores.detach().cpu())
        return sampling.choose(scores, self.decoding, self.temperature, self.top_p, self.gen)

    def chosen(self, t: int, token_id: int) -> None:
        """Keep the token (an output, and seen from now on)."""
        self.out.append(token_id)
        self.seen.append(token_id)

    def finish(self) -> None:
        """Nothing waits: every token was kept when chosen."""


def decode(
    session,
    streams: list[Stream],
    contrast: Contrast,
    *,
    max_new_tokens: int,
    decoding: str,
    temperature: float,
    top_p: float,
    seed: int,
    return_scores: bool,
    config: dict[str, Any],
) -> Generated:
    """Decode one baseline with the project's one decode loop (`runs.decode`): prefill every stream,
    then per step forward each stream's pending token, contrast, choose, feed it to every stream."""
    seen = streams[0].inputs["input_ids"][0].tolist()
    policy = ContrastPolicy(contrast, seen, decoding, temperature, top_p, seed, return_scores)
    run_decode(streams[0].ctx, Streams(streams), max_new_tokens, policy, RunRecord(), None)
    out, scores_out, info = policy.out, policy.scores, policy.info
    text = session.adapter.tokenizer.decode(out, skip_special_tokens=True)
    cfg = {
        **config,
        "decoding": decoding,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "max_new_tokens": max_new_tokens,
    }
    return Generated(
        token_ids=out, text=text, scores=scores_out if return_scores else None, info=info, config=cfg
    )
